"""Fixtures of the attack suite: an app whose secrets are cheap to check, a clock, store snapshots.

Every secret here is hashed with scrypt ln=10 (about 1 ms), so the suite can fail thousands of
credential checks and still run in seconds; the hashing module is tested at full cost elsewhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from falcon import testing

from jwtauth.accounts.hashing import SecretChecker
from jwtauth.app import create_app
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from tests.security.kit import CHEAP, Clock, cheap, snapshot


@pytest.fixture
def sec_settings(settings: Settings) -> Settings:
    return cheap(settings)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_http(
    sec_settings: Settings, keyring: KeyRing, store: Any, clock: Clock
) -> Callable[..., testing.TestClient]:
    """Return a factory of TestClients on the suite's app; keyword arguments change settings."""

    def make(**changes: Any) -> testing.TestClient:
        chosen = dataclasses.replace(sec_settings, **changes)
        app = create_app(chosen, keyring, store, clock=clock, checker=SecretChecker(dummy_log_n=CHEAP))
        return testing.TestClient(app)

    return make


@pytest.fixture
def http(make_http: Callable[..., testing.TestClient]) -> testing.TestClient:
    return make_http()


@pytest.fixture
def state(store: Any) -> Callable[[], dict[bytes, Any]]:
    """Return a function that snapshots the store (keys, types and contents)."""
    return lambda: snapshot(store)
