"""Settings from the environment: every scalar setting as JWTAUTH_<TABLE>_<KEY>, typed and validated.

The variable of a dotted key is `JWTAUTH_` + the key with dots as underscores, upper-cased:
`lifetimes.access_token` is JWTAUTH_LIFETIMES_ACCESS_TOKEN, `issuer` is JWTAUTH_ISSUER. A set
variable wins over the file. Its text is turned into the key's TOML type (from DEFAULTS) and
then checked by the very same reader as the file's value, so the rules cannot differ; an error
names the variable instead of the file. Lists and the [[clients]]/[[users]] tables stay in the
file. An empty variable counts as unset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jwtauth.config.defaults import DEFAULTS
from jwtauth.config.reader import ConfigError

# Keys whose default is None: the type their value has when set.
_TYPES_OF_UNSET: dict[str, type] = {"redis.url": str, "pages.templates": str, "metrics.port": int}
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def variable(dotted: str) -> str:
    """Return the environment variable of a dotted settings key."""
    return "JWTAUTH_" + dotted.replace(".", "_").upper()


def _kind(dotted: str) -> type | None:
    """Return the TOML type of a scalar key (None for a list, which the environment does not set)."""
    default = DEFAULTS[dotted]
    if default is None:
        return _TYPES_OF_UNSET.get(dotted, str)
    if isinstance(default, (tuple, list, dict)):
        return None
    return type(default)


def _convert(name: str, text: str, kind: type) -> Any:
    """Return `text` as a value of `kind`, or raise a ConfigError naming the variable."""
    if kind is bool:
        word = text.strip().lower()
        if word in _TRUE + _FALSE:
            return word in _TRUE
        raise ConfigError(f"{name}: must be true or false, got {text[:40]!r}")
    if kind in (int, float):
        try:
            return kind(text.strip())
        except ValueError:
            raise ConfigError(f"{name}: must be {kind.__name__}, got {text[:40]!r}") from None
    return text


def overlay(data: Mapping[str, Any], env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Return the document with every set variable in place, and {dotted key: variable} of those."""
    merged = {key: dict(value) if isinstance(value, dict) else value for key, value in data.items()}
    origins: dict[str, str] = {}
    for dotted in DEFAULTS:
        kind = _kind(dotted)
        name = variable(dotted)
        text = env.get(name)
        if kind is None or not text:
            continue
        table, _, key = dotted.rpartition(".")
        target = merged
        if table:
            existing = merged.get(table, {})
            if not isinstance(existing, dict):
                continue  # the file's own error ("must be a table") is reported by the reader
            target = merged[table] = existing
        target[key] = _convert(name, text, kind)
        origins[dotted] = name
    return merged, origins
