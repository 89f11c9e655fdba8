"""The suite's helpers: names and paths, one clock, cheap settings, requests, and checks on answers.

Every secret a test checks is hashed with scrypt ln=CHEAP (about 1 ms) instead of the demo's ln=15
(about 50 ms), so the suite can fail thousands of credential checks and still run in seconds; the
hashing module is tested at full cost in tests/test_hashing.py.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote_plus, urlencode

import jwt
from falcon import testing

from jwtauth.accounts.hashing import SecretChecker, hash_secret
from jwtauth.app import create_app
from jwtauth.config.clients import Client, User
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from jwtauth.resources import paths
from jwtauth.store.pepper import PEPPER_FILE, Pepper

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "jwtauth" / "fixtures" / "test_credentials.toml"
ISSUER = "http://testserver"
# The pepper of the tests' keys folder (conftest `keys_dir`), so a test's own store objects
# read and write what the app under test does.
PEPPER_BYTES = bytes(range(32))
PEPPER = Pepper(PEPPER_BYTES)


def write_pepper(directory: Path) -> None:
    """Give a keys folder the tests' pepper (replacing the random one `keys ensure` wrote)."""
    (directory / PEPPER_FILE).write_text(base64.urlsafe_b64encode(PEPPER_BYTES).decode())
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CHEAP = 10  # scrypt ln for every hash the suite makes

# --- endpoints (the literal contract is asserted in tests/test_discovery.py) ---------------------------
TOKENS = paths.TOKEN
REVOKE = paths.REVOKE
INTROSPECT = paths.INTROSPECT
AUTHORIZE = paths.AUTHORIZE

# --- who signs in: the demo fixtures' client and user, and the suite's other accounts -----------------
DEMO = ("testclient", "testpassword")
USER, PASSWORD = "testuser@example.com", "testpassword"
VICTIM, VICTIM_PASSWORD = "victim@example.com", "correct horse battery staple"
OTHER = ("other", "othersecret")  # a second confidential client
SPA = "spa"  # public, PKCE, one https redirect URI
SPA_URI = "https://spa.example.com/cb"
MULTI = ("multi", "multisecret")  # two redirect URIs, one with a query of its own
MULTI_URIS = ("https://app.example.com/cb?tenant=1", "https://app.example.com/other")
API, REPORTS = "https://api.example.com", "https://reports.example.com"
README_QUERY = {
    "response_type": "code",
    "client_id": "testclient",
    "redirect_uri": "https://www.example.com",
    "state": "somestate",
}

Auth = tuple[str, str] | str | None  # (id, secret) for Basic, a bare client_id for a public client
MakeApp = Callable[..., testing.TestClient]  # the make_app fixture of tests/conftest.py


class Clock:
    """A settable clock handed to create_app."""

    def __init__(self, now: float = 1_900_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ScryptCounter:
    """Count the scrypt derivations the hashing module performs (the cost an attacker sees)."""

    def __init__(self, real: Callable[..., bytes]) -> None:
        self.real, self.calls = real, 0

    def __call__(self, *args: Any, **kwargs: Any) -> bytes:
        self.calls += 1
        return self.real(*args, **kwargs)


# --- settings ------------------------------------------------------------------------------------------


def cheap_hash(secret: str) -> str:
    """Return a scrypt hash of `secret` that costs ln=CHEAP to check."""
    return hash_secret(secret, log_n=CHEAP)


def cheap_settings(settings: Settings) -> Settings:
    """Return the settings with the demo client's and user's hashes rehashed cheaply (same secrets)."""
    client = dataclasses.replace(settings.clients[0], secret_hash=cheap_hash(DEMO[1]))
    # replace(), not a new User: the demo user keeps its OpenID subject and claims.
    user = dataclasses.replace(settings.users[0], password_hash=cheap_hash(PASSWORD))
    assert settings.clients[0].client_id == DEMO[0] and settings.users[0].username == USER
    return dataclasses.replace(
        settings, clients=(client, *settings.clients[1:]), users=(user, *settings.users[1:])
    )


def suite_settings(settings: Settings) -> Settings:
    """Return cheap settings plus the attack suite's clients (other, spa, multi) and user (victim)."""
    demo = cheap_settings(settings)
    base = demo.clients[0]

    def like(client_id: str, secret: str | None, **changes: Any) -> Client:
        secret_hash = cheap_hash(secret) if secret is not None else None
        return dataclasses.replace(
            base, client_id=client_id, name=client_id, secret_hash=secret_hash, **changes
        )

    spa = like(
        SPA,
        None,
        redirect_uris=(SPA_URI,),
        grant_types=frozenset({"authorization_code", "refresh_token", "implicit"}),
        require_pkce=True,
    )
    clients = (base, like(*OTHER), spa, like(*MULTI, redirect_uris=MULTI_URIS))
    users = (demo.users[0], User(VICTIM, cheap_hash(VICTIM_PASSWORD)))
    return dataclasses.replace(demo, clients=clients, users=users)


def client_like(settings: Settings, client_id: str, **changes: Any) -> Client:
    """Return a copy of the demo client under another id (secret= names its secret, public=True none)."""
    secret = changes.pop("secret", OTHER[1])
    public = changes.pop("public", False)
    if public:
        changes.setdefault("require_pkce", True)  # as config.py sets it for every public client
    return dataclasses.replace(
        settings.clients[0],
        client_id=client_id,
        name=changes.pop("name", client_id),
        secret_hash=None if public else cheap_hash(secret),
        **changes,
    )


def cheap_user(username: str, password: str) -> User:
    """Return a user whose hash is quick to check."""
    return User(username, cheap_hash(password))


def with_clients(settings: Settings, *clients: Client) -> Settings:
    """Return settings with these clients added, each replacing a configured one of the same id."""
    given = {c.client_id for c in clients}
    kept = tuple(c for c in settings.clients if c.client_id not in given)
    return dataclasses.replace(settings, clients=(*kept, *clients))


def with_users(settings: Settings, *users: User) -> Settings:
    """Return settings with these users added, each replacing a configured one of the same name."""
    given = {u.username for u in users}
    kept = tuple(u for u in settings.users if u.username not in given)
    return dataclasses.replace(settings, users=(*kept, *users))


def build_app(
    settings: Settings,
    keyring: KeyRing,
    store: Any,
    *,
    clients: tuple[Client, ...] = (),
    users: tuple[User, ...] = (),
    clock: Callable[[], float] | None = None,
    checker: SecretChecker | None = None,
    metrics: Any = None,
    pepper: Pepper | None = None,
    **changes: Any,
) -> testing.TestClient:
    """Return a TestClient on an app with clients and users added (see with_clients) and settings changes.

    The checker is fresh unless given: its memo of proven secrets must not leak between tests.
    """
    chosen = dataclasses.replace(with_users(with_clients(settings, *clients), *users), **changes)
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    if metrics is not None:  # read it with metrics.render(): /metrics is on the management app
        extra["metrics"] = metrics
    if pepper is not None:  # another deployment's (the keys folder's by default)
        extra["pepper"] = pepper
    checker = checker or SecretChecker(dummy_log_n=CHEAP)
    return testing.TestClient(create_app(chosen, keyring, store, checker=checker, **extra))


# --- requests ------------------------------------------------------------------------------------------


def basic(client_id: str = DEMO[0], secret: str = DEMO[1]) -> dict[str, str]:
    """Return headers for client_secret_basic (id and secret sent as they are) plus the form type."""
    token = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {**FORM, "Authorization": f"Basic {token}"}


def basic_header(client_id: str, secret: str) -> str:
    """Return an RFC 6749 §2.3.1 Basic value: each part form-urlencoded, then base64."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def call(
    http: testing.TestClient,
    path: str,
    params: Mapping[str, str] | str | None = None,
    *,
    auth: Auth = DEMO,
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
    http: testing.TestClient, params: Mapping[str, str], *, auth: Auth = DEMO, remote_addr: str = "127.0.0.1"
) -> testing.Result:
    """POST to the token endpoint."""
    return call(http, TOKENS, params, auth=auth, remote_addr=remote_addr)


def login(
    http: testing.TestClient,
    username: str = USER,
    password: str = PASSWORD,
    *,
    auth: Auth = DEMO,
    remote_addr: str = "127.0.0.1",
    **params: str,
) -> testing.Result:
    """Run the password grant (the old README's first curl)."""
    body = {"grant_type": "password", "username": username, "password": password, **params}
    return token(http, body, auth=auth, remote_addr=remote_addr)


def refresh(
    http: testing.TestClient, refresh_token: str, *, auth: Auth = DEMO, **params: str
) -> testing.Result:
    """Run the refresh_token grant (the old README's second curl)."""
    return token(http, {"grant_type": "refresh_token", "refresh_token": refresh_token, **params}, auth=auth)


def introspect(
    http: testing.TestClient, presented: str, *, auth: Auth = DEMO, **params: str
) -> testing.Result:
    """POST the token to the introspection endpoint."""
    return call(http, INTROSPECT, {"token": presented, **params}, auth=auth)


def revoke(
    http: testing.TestClient, presented: str, *, auth: Auth = DEMO, **params: str
) -> testing.Result:
    """POST the token to the revocation endpoint."""
    return call(http, REVOKE, {"token": presented, **params}, auth=auth)


def active(http: testing.TestClient, presented: str, **kwargs: Any) -> bool:
    """Return the introspection verdict for a token."""
    result = introspect(http, presented, **kwargs)
    assert result.status_code == 200, result.text
    verdict: bool = result.json["active"]
    return verdict


def tokens_of(result: testing.Result) -> tuple[str, str]:
    """Return (access_token, refresh_token) of a 200 token response."""
    assert result.status_code == 200, result.text
    return result.json["access_token"], result.json["refresh_token"]


def claims_of(jwt_text: str) -> dict[str, Any]:
    """Return the claims of a JWT without verifying it (the tests check what was minted)."""
    claims: dict[str, Any] = jwt.decode(jwt_text, options={"verify_signature": False})
    return claims


def pkce_pair() -> tuple[str, str]:
    """Return a fresh (verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# --- checks on answers and on the store ----------------------------------------------------------------

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
        "invalid_dpop_proof",  # RFC 9449 §5
        "use_dpop_nonce",  # RFC 9449 §8
        "unsupported_response_type",  # RFC 9126 §2.3: PAR answers with /authorize's error codes
    }
)
# RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
_DESCRIPTION_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}
# Words that would betray an internal failure reaching the client.
_INTERNALS = ("Traceback", 'File "', "Exception", "Error(", "Redis", "redis.", "Lua", "PyJWT", "falcon.")


def assert_error(result: testing.Result, status: int, error: str) -> None:
    """Assert an RFC 6749 §5.2 error response with this status and code, never cached."""
    assert result.status_code == status, result.text
    assert result.json["error"] == error, result.text
    assert result.headers["Cache-Control"] == "no-store"


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


# --- concurrency and round trips -----------------------------------------------------------------------

T = TypeVar("T")


def race(call: Callable[[], T], threads: int = 20) -> list[T]:
    """Run `call` in `threads` threads released together; return every result."""
    barrier = threading.Barrier(threads)
    results: list[T] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait(timeout=10)
        result = call()
        with lock:
            results.append(result)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    return results


@contextlib.contextmanager
def redis_trips(store: Any) -> Iterator[list[str]]:
    """Record each round trip made on `store` meanwhile: the command's name, or "pipeline"."""
    trips: list[str] = []
    command, pipeline = store.execute_command, store.pipeline

    def counted(original: Callable[..., Any], name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            trips.append(name if name == "pipeline" else str(args[0]))
            return original(*args, **kwargs)

        return call

    store.execute_command, store.pipeline = counted(command, "command"), counted(pipeline, "pipeline")
    try:
        yield trips
    finally:
        store.execute_command, store.pipeline = command, pipeline
