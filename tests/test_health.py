"""HTTP tests of /healthz (liveness), /readyz (this worker can sign), /readyz/store and the management app."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from falcon import testing

from jwtauth.accounts.hashing import SecretChecker
from jwtauth.app import create_app, create_management_app
from jwtauth.cli import keyfolder
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from jwtauth.observability import Metrics
from jwtauth.store.connection import connect
from tests.helpers import ISSUER, PEPPER
from tests.support import free_port

SETTINGS = Settings(issuer=ISSUER)


def client_for(keys_dir: Path, store: Any) -> testing.TestClient:
    ring = KeyRing(keys_dir, retire_after=960)
    return testing.TestClient(create_app(SETTINGS, ring, store, checker=SecretChecker(), pepper=PEPPER))


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
    assert ready.json == {"status": "ready", "checks": {"signing_key": "ok", "store": "ok"}}
    store = http.simulate_get("/readyz/store")
    assert store.status_code == 200 and store.json == {"store": "ok"}
    for result in (live, ready, store):
        assert result.headers["Cache-Control"] == "no-store"


def test_readyz_503_without_a_signing_key(tmp_path: Path) -> None:
    http = client_for(empty_dir(tmp_path), fakeredis.FakeRedis())
    ready = http.simulate_get("/readyz")
    assert ready.status_code == 503
    assert ready.json == {"status": "not ready", "checks": {"signing_key": "missing", "store": "ok"}}
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
    assert http.simulate_get("/readyz").json["checks"]["signing_key"] == "missing"


def test_readyz_stays_200_when_the_store_is_down(keys_dir: Path) -> None:
    # A store outage hits every worker at once: readiness must not take the fleet out of the
    # load balancer, since JWKS and client_credentials need no store (issue 19).
    http = client_for(keys_dir, dead_redis())
    started = time.monotonic()
    ready = http.simulate_get("/readyz")
    assert time.monotonic() - started < 1  # a dead store is a quick answer, never a hang
    assert ready.status_code == 200
    assert ready.json == {"status": "degraded", "checks": {"signing_key": "ok", "store": "unavailable"}}
    assert ready.headers["Cache-Control"] == "no-store"
    # The store's own check, for alerts, says what is wrong.
    store = http.simulate_get("/readyz/store")
    assert store.status_code == 503 and store.json == {"store": "unavailable"}
    assert http.simulate_get("/jwks").json["keys"]  # what needs no store is served on


def test_healthz_always_200(tmp_path: Path) -> None:
    http = client_for(empty_dir(tmp_path), dead_redis())
    assert http.simulate_get("/healthz").status_code == 200
    assert http.simulate_get("/readyz").status_code == 503
    assert http.simulate_head("/readyz").status_code == 503


# --- the management listener's app ----------------------------------------------------------------


def management_for(keys_dir: Path, store: Any, **kwargs: Any) -> testing.TestClient:
    ring = KeyRing(keys_dir, retire_after=960)
    return testing.TestClient(create_management_app(ring, store, Metrics(), **kwargs))


def test_metrics_are_not_on_the_public_listener(keys_dir: Path) -> None:
    assert client_for(keys_dir, fakeredis.FakeRedis()).simulate_get("/metrics").status_code == 404


def test_the_management_app_serves_metrics_and_health(keys_dir: Path) -> None:
    http = management_for(keys_dir, fakeredis.FakeRedis())
    page = http.simulate_get("/metrics")
    assert page.status_code == 200 and "jwtauth_store_up 1.0" in page.text
    assert http.simulate_get("/healthz").status_code == 200
    assert http.simulate_get("/readyz").json["status"] == "ready"
    assert http.simulate_get("/api/v1/tokens").status_code == 404  # never the public API


def test_the_store_gauge_follows_the_store(keys_dir: Path) -> None:
    http = management_for(keys_dir, dead_redis())
    assert "jwtauth_store_up 0.0" in http.simulate_get("/metrics").text
    assert http.simulate_get("/readyz/store").status_code == 503


@pytest.mark.process  # a listening socket on loopback
def test_server_metrics_are_appended_and_their_absence_is_harmless(keys_dir: Path) -> None:
    body = b"# TYPE granian_blocking_queue gauge\ngranian_blocking_queue{worker=\"1\"} 3\n"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with HTTPServer(("127.0.0.1", 0), Handler) as upstream:
        thread = threading.Thread(target=upstream.handle_request, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{upstream.server_address[1]}/metrics"
        page = management_for(keys_dir, fakeredis.FakeRedis(), server_metrics=url).simulate_get("/metrics")
        thread.join(5)
    assert 'granian_blocking_queue{worker="1"} 3' in page.text and "jwtauth_store_up" in page.text
    gone = f"http://127.0.0.1:{free_port()}/metrics"
    page = management_for(keys_dir, fakeredis.FakeRedis(), server_metrics=gone).simulate_get("/metrics")
    assert page.status_code == 200 and "granian" not in page.text
