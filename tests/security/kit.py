"""What the attack modules share: the suite's clients and users, calls, and the checks every
error response must pass (RFC 6749 §5.2 shape, no-store, nothing internal, no echoed secret)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from falcon import testing

from jwtauth.accounts.hashing import hash_secret
from jwtauth.config.clients import Client, User
from jwtauth.config.settings import Settings
from tests.support import FORM

TOKENS = "/api/v1/tokens"
REVOKE = "/api/v1/revoke"
INTROSPECT = "/api/v1/introspect"
AUTHORIZE = "/authorize"
CHEAP = 10  # scrypt ln for every hash of the suite

# The demo client keeps its id and secret; the others exercise the corners an attacker probes.
OTHER = ("other", "othersecret")
SPA = "spa"  # public, PKCE, one https redirect URI
MULTI = ("multi", "multisecret")  # two redirect URIs, one with a query of its own
USER, PASSWORD = "testuser@example.com", "testpassword"
VICTIM, VICTIM_PASSWORD = "victim@example.com", "correct horse battery staple"
MULTI_URIS = ("https://app.example.com/cb?tenant=1", "https://app.example.com/other")
SPA_URI = "https://spa.example.com/cb"
API, REPORTS = "https://api.example.com", "https://reports.example.com"


class Clock:
    """A settable clock handed to create_app."""

    def __init__(self, now: float = 1_900_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def cheap(settings: Settings) -> Settings:
    """Return the demo settings with cheap hashes and the suite's extra clients and users."""
    demo = dataclasses.replace(settings.clients[0], secret_hash=hash_secret("testpassword", log_n=CHEAP))

    def like(client_id: str, secret: str | None, **changes: Any) -> Client:
        secret_hash = hash_secret(secret, log_n=CHEAP) if secret is not None else None
        return dataclasses.replace(
            demo, client_id=client_id, name=client_id, secret_hash=secret_hash, **changes
        )

    clients = (
        demo,
        like(*OTHER),
        like(
            SPA,
            None,
            redirect_uris=(SPA_URI,),
            grant_types=frozenset({"authorization_code", "refresh_token", "implicit"}),
            require_pkce=True,
        ),
        like(*MULTI, redirect_uris=MULTI_URIS),
    )
    users = (
        User(USER, hash_secret(PASSWORD, log_n=CHEAP)),
        User(VICTIM, hash_secret(VICTIM_PASSWORD, log_n=CHEAP)),
    )
    return dataclasses.replace(settings, clients=clients, users=users)


def snapshot(store: Any) -> dict[bytes, Any]:
    """Return every key of the store with its type and content (not its TTL)."""
    out: dict[bytes, Any] = {}
    for key in sorted(store.scan_iter(count=1000)):
        kind = store.type(key)
        if kind == b"string":
            value: Any = store.get(key)
        elif kind == b"hash":
            value = sorted(store.hgetall(key).items())
        elif kind == b"list":
            value = store.lrange(key, 0, -1)
        elif kind == b"zset":
            value = store.zrange(key, 0, -1, withscores=True)
        elif kind == b"set":
            value = sorted(store.smembers(key))
        else:
            value = None
        out[key] = (kind, value)
    return out


# RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 8707 §2, RFC 8628 §3.5 (slow_down) and the 503 of §4.1.2.1.
OAUTH_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "unsupported_token_type",
        "invalid_scope",
        "invalid_target",
        "slow_down",
        "authorization_pending",  # RFC 8628 §3.5
        "access_denied",
        "expired_token",
        "server_error",
        "temporarily_unavailable",
    }
)
# RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
_DESCRIPTION_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}
# Words that would betray an internal failure reaching the client.
_INTERNALS = ("Traceback", 'File "', "Exception", "Error(", "Redis", "redis.", "Lua", "PyJWT", "falcon.")


def basic_header(client_id: str, secret: str) -> str:
    """Return an RFC 6749 §2.3.1 Basic value: each part form-urlencoded, then base64."""
    from urllib.parse import quote_plus

    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def call(
    http: testing.TestClient,
    path: str,
    params: Mapping[str, str] | str | None = None,
    *,
    auth: tuple[str, str] | str | None = ("testclient", "testpassword"),
    headers: Mapping[str, str] | None = None,
    method: str = "POST",
    query: str | None = None,
    remote_addr: str = "127.0.0.1",
) -> testing.Result:
    """Send a form request; auth is (id, secret) for Basic, a bare client_id for a public client."""
    sent: dict[str, str] = dict(FORM)
    body = params if isinstance(params, str) else dict(params or {})
    if isinstance(auth, tuple):
        sent["Authorization"] = basic_header(*auth)
    elif isinstance(auth, str) and isinstance(body, dict):
        body = {"client_id": auth, **body}
    sent.update(headers or {})
    encoded = body if isinstance(body, str) else urlencode(body)
    return http.simulate_request(
        method, path, body=encoded, headers=sent, query_string=query, remote_addr=remote_addr
    )


def token(
    http: testing.TestClient,
    params: Mapping[str, str],
    *,
    auth: tuple[str, str] | str | None = ("testclient", "testpassword"),
    remote_addr: str = "127.0.0.1",
) -> testing.Result:
    """POST to the token endpoint."""
    return call(http, TOKENS, params, auth=auth, remote_addr=remote_addr)


def password_login(
    http: testing.TestClient,
    username: str = USER,
    password: str = PASSWORD,
    *,
    auth: tuple[str, str] | str | None = ("testclient", "testpassword"),
    remote_addr: str = "127.0.0.1",
    **extra: str,
) -> testing.Result:
    """Run the password grant."""
    params = {"grant_type": "password", "username": username, "password": password, **extra}
    return token(http, params, auth=auth, remote_addr=remote_addr)


def tokens_of(result: testing.Result) -> tuple[str, str]:
    """Return (access_token, refresh_token) of a 200 token response."""
    assert result.status_code == 200, result.text
    return result.json["access_token"], result.json["refresh_token"]


def pkce_pair() -> tuple[str, str]:
    """Return a fresh (verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def assert_clean_error(
    result: testing.Result,
    status: int | None = None,
    error: str | None = None,
    *,
    secrets_sent: Iterable[str] = (),
) -> dict[str, Any]:
    """Assert an RFC 6749 §5.2 error: JSON, no-store, known code, plain description, no leak."""
    if status is not None:
        assert result.status_code == status, result.text
    assert 400 <= result.status_code < 600, result.text
    assert result.headers.get("Cache-Control") == "no-store", result.headers
    assert result.headers.get("Content-Type", "").startswith("application/json"), result.headers
    body = json.loads(result.text)
    assert isinstance(body, dict) and set(body) <= {"error", "error_description", "error_uri"}, body
    assert body["error"] in OAUTH_ERRORS, body
    if error is not None:
        assert body["error"] == error, body
    description = body.get("error_description", "")
    assert set(description) <= _DESCRIPTION_CHARS, description
    for word in _INTERNALS:
        assert word not in result.text, result.text
    for secret in secrets_sent:
        if len(secret) >= 6:
            assert secret not in result.text, f"{secret!r} echoed in {result.text}"
    if result.status_code == 401:
        assert result.headers.get("WWW-Authenticate", "").startswith("Basic"), result.headers
    return body


def with_users(settings: Settings, *users: User) -> Settings:
    """Return settings with extra users."""
    return dataclasses.replace(settings, users=(*settings.users, *users))


def with_clients(settings: Settings, *clients: Client) -> Settings:
    """Return settings with extra clients."""
    return dataclasses.replace(settings, clients=(*settings.clients, *clients))
