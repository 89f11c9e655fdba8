"""The revocation document end to end: a real `jwtauth serve` on a real Redis, a verifier in this process."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from jwtauth.verify import InvalidToken, Verifier, VerifierUnavailable
from tests.helpers import FIXTURES
from tests.support import REDIS_URL, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

MAX_AGE = 2  # keys.revocations_max_age of this test's server
AUTH = ("testclient", "testpassword")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
LOGIN = {"grant_type": "password", "username": "testuser@example.com", "password": "testpassword"}


def _post(base: str, path: str, body: dict[str, str]) -> dict[str, Any]:
    answer = requests.post(base + path, data=body, auth=AUTH, headers=FORM, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json() if answer.content else {}


def _refused_after(verifier: Verifier, access: str) -> float:
    """Return how long after now the verifier starts refusing `access` as revoked."""
    start = time.monotonic()
    while time.monotonic() - start < MAX_AGE + 3:
        try:
            verifier.verify(access)
        except VerifierUnavailable:
            raise
        except InvalidToken as exc:
            assert exc.reason == "token revoked"
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError("the revoked token was still accepted")


def test_a_revoked_family_and_a_logged_out_subject_reach_an_offline_verifier(
    serve: Callable[..., Any], real_redis: tuple[Any, str], tmp_path: Path, keys_dir: Path
) -> None:
    _, prefix = real_redis
    # The command reads the server's pepper: it finds the user's families by a keyed digest.
    env = {"JWTAUTH_REDIS_URL": REDIS_URL, "JWTAUTH_REDIS_PREFIX": prefix, "JWTAUTH_KEYS_DIR": str(keys_dir)}
    config = tmp_path / "revocations.toml"
    config.write_text(
        FIXTURES.read_text().replace("[keys]\n", f"[keys]\nrevocations_max_age = {MAX_AGE}\n", 1)
    )
    with serve(env=env, config=config) as server:
        verifier = Verifier(
            issuer=server.base, audience="https://api.example.com", refetch_interval=1.0, revocations=True
        )
        first = _post(server.base, "/api/v1/tokens", LOGIN)
        second = _post(server.base, "/api/v1/tokens", LOGIN)
        assert verifier.verify(first["access_token"])["fid"]
        _post(server.base, "/api/v1/revoke", {"token": first["refresh_token"]})
        assert _refused_after(verifier, first["access_token"]) <= MAX_AGE + 1
        assert verifier.verify(second["access_token"])  # still unexpired, another family

        logout = run_cli(
            "revoke", "--subject", "testuser@example.com", "--config", str(config),
            env={**env, "JWTAUTH_ISSUER": server.base},
        )  # fmt: skip
        assert logout.returncode == 0, logout.stderr
        assert _refused_after(verifier, second["access_token"]) <= MAX_AGE + 1
        time.sleep(1.0)  # a token of the not-before second itself is refused too: iat is whole seconds
        later = _post(server.base, "/api/v1/tokens", LOGIN)  # signing in again is not undone
        assert verifier.verify(later["access_token"])["sub"] == "testuser@example.com"
