"""Fixtures of the fault tests: throwaway redis-server processes, always killed afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.redisproc import Farm, farm


@pytest.fixture
def redis_farm(tmp_path: Path) -> Iterator[Farm]:
    """Yield a Farm; skip without redis-server (fail under CI=true); kill every process after."""
    with farm(tmp_path / "redis") as running:
        yield running
