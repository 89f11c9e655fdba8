"""Shared fixtures: cheap demo settings, a keys folder, `make_app` on fakeredis, real services.

The expensive parts are built once per session: the demo settings with their scrypt hashes redone
at ln=CHEAP (the same secrets). Each test gets a fresh fakeredis, keys folder, clock and checker.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis
from falcon import testing

from jwtauth.app import create_app
from jwtauth.cli import keyfolder
from jwtauth.config.settings import Settings, load_settings
from jwtauth.keys import KeyRing
from tests.chromium import CHROMIUM, launch
from tests.helpers import (
    FIXTURES,
    ISSUER,
    Clock,
    MakeApp,
    ScryptCounter,
    build_app,
    cheap_settings,
    write_pepper,
)
from tests.support import REDIS_URL, Server, need, running_server

# Markers that follow from a fixture or a folder, so no test can forget them: `make test-fast`
# deselects redis, e2e, browser and process (see tests/fastlane.py, which enforces it).
_FIXTURE_MARKS = {
    "real_redis": ("redis",),
    "serve": ("e2e",),
    "browser": ("browser",),
    "page": ("browser",),
    "redis_farm": ("redis", "process"),
    "local_server": ("process",),
    "receiver": ("process",),  # tests/oidc/test_logout.py: a real back-channel logout listener
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    faults = Path(__file__).parent / "faults"
    for item in items:
        names: set[str] = set()
        for fixture in getattr(item, "fixturenames", ()):
            names.update(_FIXTURE_MARKS.get(fixture, ()))
        if faults in item.path.parents:
            names.update(("redis", "process"))  # every fault test runs its own redis-server
        for name in sorted(names):
            item.add_marker(name)


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Return the demo fixtures as settings, with a fixed test issuer and cheap hashes (same secrets)."""
    return cheap_settings(replace(load_settings(FIXTURES, env={}), issuer=ISSUER))


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    """Return a keys folder holding one active ES256 key."""
    directory = tmp_path / "keys"
    keyfolder.ensure(directory, "ES256", now=time.time(), retire_after=960)
    write_pepper(directory)
    return directory


@pytest.fixture
def keyring(keys_dir: Path) -> KeyRing:
    return KeyRing(keys_dir, retire_after=960)


@pytest.fixture
def store() -> Any:
    """Return a fakeredis client with Lua, fresh for each test."""
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


@pytest.fixture
def app(settings: Settings, keyring: KeyRing, store: Any) -> Any:
    return create_app(settings, keyring, store)


@pytest.fixture
def client(app: Any) -> testing.TestClient:
    return testing.TestClient(app)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_app(settings: Settings, keyring: KeyRing, store: Any, clock: Clock) -> MakeApp:
    """Return `make_app(**changes)`: a TestClient on this test's store, keys and clock.

    `changes` are Settings fields, plus `clients=`/`users=` to add (or replace by id), and
    `settings=`, `keyring=`, `store=`, `clock=`, `checker=` to swap a part (see helpers.build_app).
    """

    def make(**changes: Any) -> testing.TestClient:
        parts: dict[str, Any] = {"settings": settings, "keyring": keyring, "store": store}
        for name in parts:
            parts[name] = changes.pop(name, parts[name])
        changes.setdefault("clock", clock)
        return build_app(parts["settings"], parts["keyring"], parts["store"], **changes)

    return make


@pytest.fixture
def real_redis() -> Iterator[tuple[Any, str]]:
    """Yield (client, prefix) on the machine's Redis; only keys under prefix are deleted after."""
    conn = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
    try:
        conn.ping()
    except redis.RedisError as exc:
        need(False, f"no Redis at {REDIS_URL}: {exc}")
    prefix = f"jwtauth-test:{uuid.uuid4().hex[:12]}:"
    yield conn, prefix
    for key in conn.scan_iter(match=prefix + "*", count=1000):
        conn.delete(key)
    conn.close()


@pytest.fixture
def serve(tmp_path: Path, keys_dir: Path) -> Callable[..., contextlib.AbstractContextManager[Server]]:
    """Return a factory: `with serve(workers=2, env={...}) as server:` runs a real jwtauth serve."""

    def start(**kwargs: Any) -> contextlib.AbstractContextManager[Server]:
        kwargs.setdefault("keys_dir", keys_dir)
        return running_server(log_dir=tmp_path, **kwargs)

    return start


@pytest.fixture
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> ScryptCounter:
    """Count scrypt calls made through jwtauth.accounts.hashing during the test."""
    counter = ScryptCounter(hashlib.scrypt)
    monkeypatch.setattr("jwtauth.accounts.hashing.hashlib.scrypt", counter)
    return counter


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Yield Debian's Chromium for a module's tests (skips on a laptop without it, fails in CI)."""
    need(os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """Yield a fresh tab in its own browser context (no cookies shared between tests)."""
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


@pytest.fixture
def derives(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int, int]]]:
    """Record the scrypt parameters (log_n, r, p) of every derivation jwtauth.accounts.hashing makes."""
    from jwtauth.accounts import hashing

    calls: list[tuple[int, int, int]] = []
    real = hashing._derive

    def counting(secret: bytes, salt: bytes, log_n: int, r: int, p: int) -> bytes:
        calls.append((log_n, r, p))
        return real(secret, salt, log_n, r, p)

    monkeypatch.setattr("jwtauth.accounts.hashing._derive", counting)
    yield calls
