"""Helpers for the revocation document tests: a fetch seam into a TestClient, and a subscribed verifier."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import jwt
from falcon import testing

from jwtauth.verify import NotModified, Verifier
from tests.helpers import ISSUER, login


class AppFetch:
    """Fetch URLs from a TestClient as a verifier would over HTTP; `replace` swaps a body."""

    def __init__(self, http: testing.TestClient) -> None:
        self.http = http
        self.calls: list[str] = []
        self.replace: Callable[[bytes], bytes] | None = None

    def __call__(
        self, url: str, *, headers: Mapping[str, str] | None = None
    ) -> tuple[bytes, Mapping[str, str]]:
        path = urllib.parse.urlsplit(url).path
        self.calls.append(path)
        answer = self.http.simulate_get(path, headers=dict(headers or {}))
        if answer.status_code == 304:
            raise NotModified(dict(answer.headers))
        if answer.status_code != 200:
            raise RuntimeError(f"{path}: {answer.status_code}")
        body = answer.content
        if self.replace is not None and path.endswith("/revocations"):
            body = self.replace(body)
        return body, dict(answer.headers)


def subscribed(
    http: testing.TestClient, clock: Callable[[], float], **options: Any
) -> tuple[Verifier, AppFetch]:
    """Return a verifier subscribed to the app's revocation document, and its fetch seam."""
    fetch = AppFetch(http)
    verifier = Verifier(
        issuer=ISSUER, audience=None, verify_audience=False, fetch=fetch, clock=clock,
        refetch_interval=1.0, revocations=True, **options,
    )  # fmt: skip
    return verifier, fetch


def signed_in(http: testing.TestClient, username: str | None = None) -> dict[str, Any]:
    """Run the password grant and return the token response (access token with fid, refresh token)."""
    answer = login(http) if username is None else login(http, username)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json
    assert "fid" in jwt.decode(body["access_token"], options={"verify_signature": False})
    return body
