"""Fixtures of the attack suite: the suite's accounts on `make_app`, and store snapshots.

The suite's clients and users (tests.helpers.suite_settings) are hashed at ln=CHEAP once per session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from falcon import testing

from jwtauth.config.settings import Settings
from tests.helpers import MakeApp, snapshot, suite_settings


@pytest.fixture(scope="session")
def sec_settings(settings: Settings) -> Settings:
    return suite_settings(settings)


@pytest.fixture
def make_app(make_app: MakeApp, sec_settings: Settings) -> MakeApp:
    """Return the root make_app with the suite's accounts as its base settings."""

    def make(**changes: Any) -> testing.TestClient:
        changes.setdefault("settings", sec_settings)
        return make_app(**changes)

    return make


@pytest.fixture
def http(make_app: MakeApp) -> testing.TestClient:
    return make_app()


@pytest.fixture
def state(store: Any) -> Callable[[], dict[bytes, Any]]:
    """Return a function that snapshots the store (keys, types and contents)."""
    return lambda: snapshot(store)
