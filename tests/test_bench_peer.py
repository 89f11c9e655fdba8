"""bench/peer: node-oidc-provider for make bench PEERS=1: pinned, configured as issue 20 asks, working."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import pytest
import requests

from bench import peers
from tests.support import REDIS_URL, need

PEER = peers.PEER_DIR


def test_packages_are_pinned_exactly_and_locked_without_registry_urls() -> None:
    wanted = json.loads((PEER / "package.json").read_text())["dependencies"]
    assert set(wanted) == {"oidc-provider", "ioredis"}
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", version) for version in wanted.values()), wanted
    lock = json.loads((PEER / "package-lock.json").read_text())
    assert lock["packages"][""]["dependencies"] == wanted
    for name, version in wanted.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert all("integrity" in entry for key, entry in lock["packages"].items() if key)
    # npm ci fetches each by name, version and integrity from the configured registry: the lock
    # names no host (a `resolved` URL would pin one).
    assert all("resolved" not in entry for entry in lock["packages"].values())
    assert peers.pinned() == wanted


def test_the_provider_is_configured_as_issue_20_asks() -> None:
    source = (PEER / "provider.mjs").read_text()
    assert "const WORKERS = 2;" in source and "cluster.fork()" in source
    assert "accessTokenFormat: 'jwt'" in source and "sign: { alg: 'ES256' }" in source
    assert "resourceIndicators: {\n        enabled: true" in source
    assert "rotateRefreshToken: true," in source
    assert "new Redis(redisUrl, { keyPrefix })" in source  # its own prefix, shared by both workers
    assert "multi.expire(key" in source  # every key it writes expires


def test_the_signing_key_is_a_private_p256_jwk() -> None:
    jwk = json.loads(peers.signing_jwk())
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256" and "d" in jwk


def test_without_node_the_peer_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda tool: None)
    assert peers.unavailable() == "node and npm not installed (make system-deps installs Node)"


@pytest.mark.process
def test_the_peer_issues_jwt_tokens_and_rotates_refresh_tokens_with_reuse_detection(
    real_redis: tuple[object, str], tmp_path: Path
) -> None:
    need(peers.unavailable() is None, f"the peer cannot run: {peers.unavailable()}")
    peers.install()
    _client, prefix = real_redis
    url = REDIS_URL
    env = peers.peer_env(peers.signing_jwk())
    with peers.peer_server(url, prefix + "peer:", env) as server:
        token = requests.post(
            server.base + peers.TOKEN, data={"grant_type": "client_credentials"},
            auth=("testclient", "testpassword"), timeout=10,
        ).json()  # fmt: skip
        header = json.loads(_b64(token["access_token"].split(".")[0]))
        assert header["alg"] == "ES256" and header["typ"] == "at+jwt"
        first = peers.mint(2, url, prefix + "peer:", env, tmp_path / "rt.txt").read_text().split()[0]

        def refresh(value: str) -> requests.Response:
            body = {"grant_type": "refresh_token", "refresh_token": value}
            return requests.post(
                server.base + peers.TOKEN, data=body, auth=("testclient", "testpassword"), timeout=10
            )

        rotated = refresh(first)
        assert rotated.status_code == 200, rotated.text
        successor = rotated.json()["refresh_token"]
        assert successor != first
        assert refresh(first).status_code == 400  # reused: the grant is revoked...
        assert refresh(successor).status_code == 400  # ...with its current token
        assert peers.error_lines(server) == []


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
