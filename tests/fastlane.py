"""Guard `make test-fast` (pytest -p tests.fastlane): unit tests start no process, open no port.

A test that does either must carry one of the markers the fast lane deselects (redis, e2e,
browser, process); here it fails instead of quietly slowing the edit-test loop down.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest


def _refuse(what: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"make test-fast {what}: mark the test redis, e2e, browser or process")

    return refuse


@pytest.fixture(autouse=True)
def _no_processes_or_servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _refuse("starts no process"))
    monkeypatch.setattr(socket.socket, "listen", _refuse("opens no listening socket"))
    yield
