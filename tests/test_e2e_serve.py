"""A real `jwtauth serve` process: the old README's curl calls, verified offline from /jwks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
import pytest
import requests

pytestmark = pytest.mark.e2e


def _verify_offline(base: str, token: str) -> dict[str, Any]:
    signing_key = jwt.PyJWKClient(base + "/jwks").get_signing_key_from_jwt(token)
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    claims: dict[str, Any] = jwt.decode(
        token, signing_key.key, algorithms=["ES256"], audience="https://api.example.com", issuer=base
    )
    return claims


def test_old_readme_curls_get_tokens_that_verify_offline(serve: Callable[..., Any]) -> None:
    with serve() as server:
        by_basic = requests.post(
            server.base + "/api/v1/tokens/",
            auth=("testclient", "testpassword"),
            data={"grant_type": "client_credentials"},
            timeout=5,
        )
        by_body = requests.post(
            server.base + "/api/v1/tokens/",
            data="grant_type=client_credentials&client_id=testclient&client_secret=testpassword",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=5,
        )
        for response in (by_basic, by_body):
            assert response.status_code == 200, response.text
            assert response.headers["Cache-Control"] == "no-store"
            body = response.json()
            assert body["token_type"] == "Bearer" and "refresh_token" not in body
            claims = _verify_offline(server.base, body["access_token"])
            assert claims["sub"] == claims["client_id"] == "testclient"
            assert claims["scope"] == body["scope"] == "read write"
        metadata = requests.get(server.base + "/.well-known/oauth-authorization-server", timeout=5).json()
        assert metadata["issuer"] == server.base
        assert metadata["jwks_uri"] == server.base + "/jwks"


def test_serve_refuses_to_start_without_a_key(tmp_path: Any) -> None:
    import subprocess
    import sys

    from tests.helpers import FIXTURES, ROOT

    empty = tmp_path / "empty-keys"
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "jwtauth", "serve", "--config", str(FIXTURES), "--port", "1"],
        capture_output=True, text=True, cwd=ROOT, timeout=30,
        env={"PATH": "/usr/bin:/bin", "JWTAUTH_KEYS_DIR": str(empty)},
    )
    assert result.returncode == 2
    assert "make keygen" in result.stderr
    assert "Traceback" not in result.stderr
