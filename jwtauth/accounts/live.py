"""The clients and users in use, as everything built from them reads them.

A settings reload (accounts/reload.py) swaps the client and user tables in their registries.
Whatever is computed from those tables (pairwise sectors, CORS origins, the scopes discovery
offers) reads the live table and computes again once it was swapped, so nothing keeps a
snapshot from start: a reload reaches every part, and nothing is computed per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

Record = TypeVar("Record", covariant=True)
Value = TypeVar("Value")


class Live(Protocol[Record]):
    """A table of records by name that a reload may swap whole (never change in place)."""

    @property
    def table(self) -> Mapping[str, Record]:
        """Return the records in use by name: a new mapping after each reload."""
        ...


class Fixed(Generic[Value]):
    """A table that never reloads: what the CLI's one-off commands and unit tests build from."""

    def __init__(self, records: Iterable[Value], name: Callable[[Value], str]) -> None:
        self._table = {name(r): r for r in records}

    @property
    def table(self) -> Mapping[str, Value]:
        """Return the records by name."""
        return self._table


class Derived(Generic[Value]):
    """A value computed from live tables, computed again once a reload swapped one of them."""

    def __init__(self, build: Callable[..., Value], *sources: Live[Any]) -> None:
        self._build, self._sources = build, sources
        self._cached: tuple[tuple[Mapping[str, Any], ...], Value] | None = None

    def get(self) -> Value:
        """Return the value for the tables in use now."""
        tables = tuple(source.table for source in self._sources)
        cached = self._cached  # one read: another thread may swap it meanwhile
        if cached is None or any(a is not b for a, b in zip(cached[0], tables, strict=True)):
            # Identity, not equality: a swapped table is a new mapping, and comparing records
            # on every request would cost what the cache saves. Two threads may both build
            # after a swap; each builds from one consistent set of tables.
            cached = (tables, self._build(*tables))
            self._cached = cached
        return cached[1]
