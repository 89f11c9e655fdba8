"""Refresh families end to end: real `jwtauth serve` processes, a real Redis, the old README curls."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from jwtauth.store import CodeRecord, CodeStore
from tests.helpers import FIXTURES, PEPPER, ROOT, race
from tests.support import REDIS_URL

pytestmark = pytest.mark.e2e

AUTH = ("testclient", "testpassword")
PASSWORD_CURL = "grant_type=password&username=testuser@example.com&password=testpassword"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}  # what curl -d sends
ServeFactory = Callable[..., Any]


def post(base: str, path: str, body: str | dict[str, str], auth: tuple[str, str] = AUTH) -> requests.Response:
    """POST a form as curl -u id:secret URL -d BODY does."""
    return requests.post(base + path, data=body, auth=auth, headers=FORM, timeout=10)


def password_login(base: str) -> dict[str, Any]:
    result = post(base, "/api/v1/tokens/", PASSWORD_CURL)
    assert result.status_code == 200, result.text
    body: dict[str, Any] = result.json()
    return body


def refresh(base: str, token: str) -> requests.Response:
    return post(base, "/api/v1/tokens/", f"grant_type=refresh_token&refresh_token={token}")


def is_active(base: str, token: str) -> bool:
    result = post(base, "/api/v1/introspect", {"token": token})
    assert result.status_code == 200, result.text
    verdict: bool = result.json()["active"]
    return verdict


@pytest.fixture
def redis_env(real_redis: tuple[Any, str]) -> Iterator[tuple[Any, str, dict[str, str]]]:
    """Yield (redis client, prefix, serve env); the real_redis fixture deletes the prefix after."""
    conn, prefix = real_redis
    yield conn, prefix, {"JWTAUTH_REDIS_URL": REDIS_URL, "JWTAUTH_REDIS_PREFIX": prefix}


def test_old_readme_curls_password_then_refresh(serve: ServeFactory) -> None:
    with serve() as server:  # the embedded store, as `make run` serves it
        first = password_login(server.base)
        assert first["token_type"] == "Bearer" and first["scope"] == "read write"
        # curl -u testclient:testpassword localhost:8000/api/v1/tokens/ \
        #   -d 'grant_type=refresh_token&refresh_token=…'
        second = refresh(server.base, first["refresh_token"])
        assert second.status_code == 200, second.text
        pair = second.json()
        assert pair["refresh_token"] != first["refresh_token"]
        assert pair["access_token"] != first["access_token"]
        signing_key = jwt.PyJWKClient(server.base + "/jwks").get_signing_key_from_jwt(pair["access_token"])
        claims = jwt.decode(
            pair["access_token"],
            signing_key.key,
            algorithms=["ES256"],
            audience="https://api.example.com",
            issuer=server.base,
        )
        assert claims["sub"] == "testuser@example.com"
        assert claims["fid"] == first["refresh_token"].split(".")[0]


@pytest.mark.redis
def test_twenty_concurrent_refreshes_yield_one_live_successor(
    serve: ServeFactory, redis_env: tuple[Any, str, dict[str, str]], tmp_path: Path
) -> None:
    _, _, env = redis_env
    # A generous grace window, so a loaded test machine cannot turn the race into reuse.
    config = tmp_path / "grace.toml"
    config.write_text(FIXTURES.read_text().replace("refresh_grace = 5", "refresh_grace = 60"))
    with serve(workers=2, env=env, config=config) as server:
        token = password_login(server.base)["refresh_token"]
        results = race(lambda: refresh(server.base, token))
        assert [r.status_code for r in results] == [200] * 20, [r.text for r in results]
        successors = {r.json()["refresh_token"] for r in results}
        assert len(successors) == 1  # never two live successors
        assert len({r.json()["access_token"] for r in results}) == 20
        (successor,) = successors
        # The family rotates on with exactly that successor.
        after = refresh(server.base, successor)
        assert after.status_code == 200, after.text
        newest = after.json()["refresh_token"]
        assert is_active(server.base, newest)
        # The raced token is now two generations old: reuse, and the whole family ends.
        assert refresh(server.base, token).json()["error"] == "invalid_grant"
        assert refresh(server.base, newest).json()["error"] == "invalid_grant"


@pytest.mark.redis
def test_a_chain_of_100_rotations_over_http(
    serve: ServeFactory, redis_env: tuple[Any, str, dict[str, str]]
) -> None:
    _, _, env = redis_env
    with serve(workers=2, env=env) as server:
        login = password_login(server.base)
        chain = [login["refresh_token"]]
        for _ in range(100):
            answer = refresh(server.base, chain[-1])
            assert answer.status_code == 200, answer.text
            chain.append(answer.json()["refresh_token"])
        assert len(set(chain)) == 101
        assert {token.split(".")[0] for token in chain} == {chain[0].split(".")[0]}
        assert is_active(server.base, chain[-1]) and not is_active(server.base, chain[50])
        assert is_active(server.base, login["access_token"])
        assert refresh(server.base, chain[50]).json()["error"] == "invalid_grant"  # reuse
        assert not is_active(server.base, chain[-1]) and not is_active(server.base, login["access_token"])


def _stored_bytes(conn: Any, prefix: str) -> tuple[list[bytes], dict[bytes, int]]:
    """Return every key name and stored byte string under prefix, and each key's PTTL."""
    pattern = re.sub(r"([\\*?\[\]])", r"\\\1", prefix) + "*"
    blobs: list[bytes] = []
    ttls: dict[bytes, int] = {}
    for key in conn.scan_iter(match=pattern, count=1000):
        ttls[key] = conn.pttl(key)
        blobs.append(key)
        kind = conn.type(key)
        if kind == b"string":
            blobs.append(conn.get(key))
        elif kind == b"hash":
            for field, value in conn.hgetall(key).items():
                blobs += [field, value]
        elif kind == b"list":
            blobs += conn.lrange(key, 0, -1)
        elif kind == b"zset":
            blobs += conn.zrange(key, 0, -1)
        else:
            raise AssertionError(f"unexpected key type {kind!r} for {key!r}")
    return blobs, ttls


def _secret_forms(refresh_token: str) -> list[bytes]:
    """Return a refresh token, its secret part, and the secret's raw bytes."""
    secret = refresh_token.split(".")[1]
    return [refresh_token.encode(), secret.encode(), base64.urlsafe_b64decode(secret + "=")]


@pytest.mark.redis
def test_redis_holds_no_usable_token_and_every_key_expires(
    serve: ServeFactory, redis_env: tuple[Any, str, dict[str, str]]
) -> None:
    conn, prefix, env = redis_env
    with serve(workers=2, env=env) as server:
        login = password_login(server.base)
        rotated = refresh(server.base, login["refresh_token"]).json()
        doomed = password_login(server.base)
        assert post(server.base, "/api/v1/revoke", {"token": doomed["refresh_token"]}).status_code == 200
        wrong = post(server.base, "/api/v1/tokens", {**_login_form(), "password": "wrong-password"})
        assert wrong.json()["error"] == "invalid_grant"
        # An authorization code, issued into the same store and redeemed over HTTP.
        code = CodeStore(conn, pepper=PEPPER, prefix=prefix).issue(
            CodeRecord(
                client_id="testclient",
                redirect_uri=None,
                scope="read",
                subject="testuser@example.com",
                code_challenge=None,
                code_challenge_method=None,
                auth_time=time.time(),
                audience=("https://api.example.com",),
            ),
            ttl=60,
            now=time.time(),
        )
        redeemed = post(server.base, "/api/v1/tokens", {"grant_type": "authorization_code", "code": code})
        assert redeemed.status_code == 200, redeemed.text
        blobs, ttls = _stored_bytes(conn, prefix)
    kinds = {key[len(prefix) : len(prefix) + 2] for key in ttls}
    assert {b"{f", b"{s", b"{l", b"{c"} <= kinds, kinds  # families, index, counters, codes
    assert all(ttl > 0 for ttl in ttls.values()), {k: t for k, t in ttls.items() if t <= 0}
    forbidden = [code.encode(), b"testpassword", b"wrong-password"]
    for body in (login, rotated, doomed, redeemed.json()):
        forbidden += [body["access_token"].encode(), body["access_token"].split(".")[2].encode()]
        forbidden += _secret_forms(body["refresh_token"])
    for blob in blobs:
        for secret in forbidden:
            assert secret not in blob, (secret[:12], blob[:60])


def _login_form() -> dict[str, str]:
    return {"grant_type": "password", "username": "testuser@example.com", "password": "testpassword"}


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jwtauth", "revoke", *args, "--config", str(FIXTURES)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", **env},
    )


@pytest.mark.redis
def test_revoke_command_logs_a_user_or_a_client_out_everywhere(
    serve: ServeFactory, redis_env: tuple[Any, str, dict[str, str]], keys_dir: Path
) -> None:
    _, _, served = redis_env
    env = {**served, "JWTAUTH_KEYS_DIR": str(keys_dir)}  # the command needs the server's pepper
    with serve(workers=2, env=served) as server:
        logins = [password_login(server.base) for _ in range(2)]
        done = _cli("--subject", "testuser@example.com", env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("revoked 2 refresh-token families of user testuser@example.com\n")
        for body in logins:
            assert refresh(server.base, body["refresh_token"]).json()["error"] == "invalid_grant"
            assert not is_active(server.base, body["access_token"])
        again = password_login(server.base)
        by_client = _cli("--client", "testclient", env=env)
        assert by_client.stdout.startswith("revoked 1 refresh-token family of client testclient\n")
        assert not is_active(server.base, again["access_token"])
        nobody = _cli("--subject", "nobody@example.com", env=env)
        assert nobody.stdout.startswith("revoked 0 refresh-token families of user nobody@example.com (not")


def test_revoke_command_explains_what_it_needs() -> None:
    embedded = _cli("--subject", "testuser@example.com", env={})
    assert embedded.returncode == 2 and "JWTAUTH_REDIS_URL" in embedded.stderr
    nothing = _cli(env={"JWTAUTH_REDIS_URL": REDIS_URL})
    assert nothing.returncode == 2 and "--subject USER, --client ID" in nothing.stderr
    for result in (embedded, nothing):
        assert "Traceback" not in result.stderr
