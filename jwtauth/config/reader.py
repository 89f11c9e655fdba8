"""Typed reading of one TOML table, every error as `file: dotted.key: problem`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from jwtauth.config.defaults import DEFAULTS

T = TypeVar("T")


class ConfigError(Exception):
    """The configuration is unusable; the message names the file, the key and the problem."""


class TableReader:
    """Typed access to one TOML table that reports errors as `file: dotted.key: problem`."""

    def __init__(
        self, source: str, path: str, table: Mapping[str, Any], origins: Mapping[str, str] | None = None
    ) -> None:
        self.source, self.path, self.table = source, path, table
        # dotted key -> the environment variable its value came from (config/environment.py)
        self.origins: Mapping[str, str] = origins or {}

    def error(self, key: str, problem: str) -> ConfigError:
        where = f"{self.path}.{key}" if self.path else key
        if where in self.origins:  # the file is not to blame: name the variable
            return ConfigError(f"{self.origins[where]}: {problem}")
        return ConfigError(f"{self.source}: {where}: {problem}")

    def default(self, key: str) -> Any:
        """Return the key's default from DEFAULTS (None when it has none)."""
        return DEFAULTS.get(f"{self.path}.{key}" if self.path else key)

    def get(self, key: str, kind: type[T], default: Any = None, *, required: bool = False) -> T:
        if key not in self.table:
            default = self.default(key) if default is None else default
            if required or default is None:
                raise self.error(key, "is required")
            return default  # type: ignore[no-any-return]
        value = self.table[key]
        # bool is an int in Python; a TOML `true` where a number is expected is a mistake.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(key, f"must be {kind.__name__}, got {type(value).__name__} {value!r}")
        return value

    def optional(self, key: str, kind: type[T]) -> T | None:
        return self.get(key, kind) if key in self.table else None

    def strings(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.table.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"must be a list of strings, got {value!r}")
        return tuple(value)

    def positive(self, key: str, default: int | None = None, *, maximum: int = 10**9) -> int:
        value = self.get(key, int, default)
        if not 0 < value <= maximum:
            raise self.error(key, f"must be between 1 and {maximum}, got {value}")
        return value

    def unknown_keys(self, allowed: set[str]) -> None:
        extra = sorted(set(self.table) - allowed)
        if extra:
            raise self.error(extra[0], f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def table_at(self, key: str) -> TableReader:
        value = self.table.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, "must be a table")
        return TableReader(self.source, f"{self.path}.{key}" if self.path else key, value, self.origins)
