"""Helpers for the password, refresh, revocation and introspection tests: apps, clients, calls."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import jwt
from falcon import testing

from jwtauth.accounts.hashing import SecretChecker, hash_secret
from jwtauth.app import create_app
from jwtauth.config.clients import Client, User
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from tests.support import FORM, basic

USER, PASSWORD = "testuser@example.com", "testpassword"
TOKENS = "/api/v1/tokens"
REVOKE = "/api/v1/revoke"
INTROSPECT = "/api/v1/introspect"
API, REPORTS = "https://api.example.com", "https://reports.example.com"
# A second confidential client ("other"/"othersecret") and a public one ("spa").
OTHER = ("other", "othersecret")


class Clock:
    """A settable clock handed to create_app."""

    def __init__(self, now: float = 1_900_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def client_like(settings: Settings, client_id: str, *, public: bool = False, **changes: Any) -> Client:
    """Return a copy of the demo client under another id (secret "othersecret" unless public)."""
    secret_hash = None if public else hash_secret("othersecret", log_n=10)
    return dataclasses.replace(
        settings.clients[0],
        client_id=client_id,
        name=client_id,
        secret_hash=secret_hash,
        require_pkce=public or settings.clients[0].require_pkce,
        **changes,
    )


def cheap_user(username: str, password: str) -> User:
    """Return a user whose hash is quick to check (tests that fail many logins)."""
    return User(username, hash_secret(password, log_n=10))


def make_app(
    settings: Settings,
    keyring: KeyRing,
    store: Any,
    *,
    clients: tuple[Client, ...] = (),
    users: tuple[User, ...] = (),
    clock: Callable[[], float] | None = None,
    **changes: Any,
) -> testing.TestClient:
    """Return a TestClient on an app with extra clients, users and settings changes."""
    settings = dataclasses.replace(
        settings,
        clients=(*settings.clients, *clients),
        users=(*settings.users, *users),
        **changes,
    )
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    app = create_app(settings, keyring, store, checker=SecretChecker(dummy_log_n=10), **extra)
    return testing.TestClient(app)


def headers_for(auth: tuple[str, str] | str | None) -> dict[str, str]:
    """Return Basic headers for (id, secret), plain form headers otherwise."""
    return basic(*auth) if isinstance(auth, tuple) else dict(FORM)


def post(
    http: testing.TestClient,
    path: str,
    params: dict[str, str],
    *,
    auth: tuple[str, str] | str | None = ("testclient", "testpassword"),
    remote_addr: str = "127.0.0.1",
) -> testing.Result:
    """POST form parameters; auth is (id, secret) for Basic, a bare client_id for a public client."""
    if isinstance(auth, str):
        params = {"client_id": auth, **params}
    return http.simulate_post(
        path, body=urlencode(params), headers=headers_for(auth), remote_addr=remote_addr
    )


def login(
    http: testing.TestClient,
    *,
    username: str = USER,
    password: str = PASSWORD,
    auth: tuple[str, str] | str | None = ("testclient", "testpassword"),
    remote_addr: str = "127.0.0.1",
    **params: str,
) -> testing.Result:
    """Run the password grant (the old README's first curl)."""
    body = {"grant_type": "password", "username": username, "password": password, **params}
    return post(http, TOKENS, body, auth=auth, remote_addr=remote_addr)


def tokens_of(result: testing.Result) -> tuple[str, str]:
    """Return (access_token, refresh_token) of a 200 token response."""
    assert result.status_code == 200, result.text
    return result.json["access_token"], result.json["refresh_token"]


def refresh(
    http: testing.TestClient,
    token: str,
    *,
    auth: tuple[str, str] | str | None = ("testclient", "testpassword"),
    **params: str,
) -> testing.Result:
    """Run the refresh_token grant (the old README's second curl)."""
    return post(http, TOKENS, {"grant_type": "refresh_token", "refresh_token": token, **params}, auth=auth)


def introspect(
    http: testing.TestClient,
    token: str,
    *,
    auth: tuple[str, str] | str | None = ("testclient", "testpassword"),
    **params: str,
) -> testing.Result:
    """POST the token to the introspection endpoint."""
    return post(http, INTROSPECT, {"token": token, **params}, auth=auth)


def revoke(
    http: testing.TestClient,
    token: str,
    *,
    auth: tuple[str, str] | str | None = ("testclient", "testpassword"),
    **params: str,
) -> testing.Result:
    """POST the token to the revocation endpoint."""
    return post(http, REVOKE, {"token": token, **params}, auth=auth)


def active(http: testing.TestClient, token: str, **kwargs: Any) -> bool:
    """Return the introspection verdict for a token."""
    result = introspect(http, token, **kwargs)
    assert result.status_code == 200, result.text
    verdict: bool = result.json["active"]
    return verdict


def claims_of(token: str) -> dict[str, Any]:
    """Return the claims of a JWT without verifying it (the tests check what was minted)."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def assert_error(result: testing.Result, status: int, error: str) -> None:
    """Assert an RFC 6749 §5.2 error response."""
    assert result.status_code == status, result.text
    assert result.json["error"] == error, result.text
    assert result.headers["Cache-Control"] == "no-store"
