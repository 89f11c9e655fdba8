"""HTTP tests of /healthz (liveness) and /readyz (a signing key and a reachable store)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import fakeredis
from falcon import testing

from jwtauth.accounts.hashing import SecretChecker
from jwtauth.app import create_app
from jwtauth.cli import keyfolder
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from jwtauth.store.connection import connect
from tests.helpers import ISSUER
from tests.support import free_port

SETTINGS = Settings(issuer=ISSUER)


def client_for(keys_dir: Path, store: Any) -> testing.TestClient:
    ring = KeyRing(keys_dir, retire_after=960)
    return testing.TestClient(create_app(SETTINGS, ring, store, checker=SecretChecker()))


def dead_redis() -> Any:
    # Built like production (jwtauth.store.connection): no retries, so a refused port fails at once.
    # A bare redis.Redis retries with backoff for seconds.
    return connect(f"redis://127.0.0.1:{free_port()}/0")


def empty_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "empty"
    directory.mkdir()
    return directory


def test_healthz_and_readyz_when_all_is_well(keys_dir: Path) -> None:
    http = client_for(keys_dir, fakeredis.FakeRedis())
    live = http.simulate_get("/healthz")
    assert live.status_code == 200 and live.json == {"status": "ok"}
    ready = http.simulate_get("/readyz")
    assert ready.status_code == 200
    assert ready.json == {"status": "ready", "checks": {"signing_key": True, "store": True}}
    for result in (live, ready):
        assert result.headers["Cache-Control"] == "no-store"


def test_readyz_503_without_a_signing_key(tmp_path: Path) -> None:
    http = client_for(empty_dir(tmp_path), fakeredis.FakeRedis())
    ready = http.simulate_get("/readyz")
    assert ready.status_code == 503
    assert ready.json["checks"] == {"signing_key": False, "store": True}
    assert http.simulate_get("/healthz").status_code == 200


def test_readyz_503_when_the_keys_folder_is_missing(tmp_path: Path) -> None:
    http = client_for(tmp_path / "missing", fakeredis.FakeRedis())
    assert http.simulate_get("/readyz").status_code == 503


def test_readyz_503_with_only_a_future_key(tmp_path: Path) -> None:
    # A key that is published but not yet signing does not make the server ready.
    directory = tmp_path / "keys"
    directory.mkdir()
    record = keyfolder.new_record("ES256", time.time(), time.time() + 3600)
    keyfolder.write_record(directory, record)
    http = client_for(directory, fakeredis.FakeRedis())
    assert http.simulate_get("/readyz").json["checks"]["signing_key"] is False


def test_readyz_503_when_the_store_is_down(keys_dir: Path) -> None:
    http = client_for(keys_dir, dead_redis())
    started = time.monotonic()
    ready = http.simulate_get("/readyz")
    assert time.monotonic() - started < 1  # a dead store is a quick answer, never a hang
    assert ready.status_code == 503
    assert ready.json == {"status": "not ready", "checks": {"signing_key": True, "store": False}}
    assert ready.headers["Cache-Control"] == "no-store"
    assert http.simulate_get("/healthz").status_code == 200


def test_healthz_always_200(tmp_path: Path) -> None:
    http = client_for(empty_dir(tmp_path), dead_redis())
    assert http.simulate_get("/healthz").status_code == 200
    assert http.simulate_get("/readyz").status_code == 503
