"""Edit the settings file without disturbing the rest of it: append a table, or change one in place.

`append_table` adds the new table as text at the end of the file, so every comment, blank line
and key order the operator wrote survives; `edit_document` changes or removes a table through
tomlkit, which writes back what it does not touch as it was. The result is validated with
parse_settings (the very check `jwtauth serve` applies at start) before it replaces the file,
atomically: a temporary file in the same folder, fsynced, then renamed over the original with
the original's permissions. A lock on the folder makes two concurrent edits run one after the
other, so neither is lost.
"""

from __future__ import annotations

import stat
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jwtauth.cli.files import folder_lock, write_atomically
from jwtauth.config.reader import ConfigError
from jwtauth.config.settings import Settings, parse_settings

# Nested lists and inline tables too: a client's JWK Set is written as one inline table.
Value = str | bool | int | Sequence[Any] | Mapping[str, Any]

# TOML basic strings: these must be escaped; every other character is written as is.
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(text: str) -> str:
    """Return `text` as a TOML basic string, control characters escaped (TOML 1.0 §String)."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, Mapping):  # an inline table (TOML 1.0 §Inline Table)
        return "{ " + ", ".join(f"{toml_string(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return "[" + ", ".join(_toml_value(v) for v in value) + "]"


def render_table(array: str, fields: Mapping[str, Value], comment: str | None = None) -> str:
    """Return `[[array]]` with one `key = value` line per field, preceded by an optional comment."""
    lines = [f"# {line}".rstrip() for line in (comment or "").splitlines()]
    lines.append(f"[[{array}]]")
    lines.extend(f"{key} = {_toml_value(value)}" for key, value in fields.items())
    return "\n".join(lines) + "\n"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _parse(text: str, source: str) -> Settings:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    # The file alone must be valid: environment overrides are not part of what is written.
    return parse_settings(data, source, {})


def _mode(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o600  # a new settings file holds hashes of secrets: keep it private


def append_table(
    path: Path,
    array: str,
    fields: Mapping[str, Value],
    *,
    refuse: Callable[[Settings], str | None] = lambda current: None,
    comment: str | None = None,
) -> Settings:
    """Append one table to the settings file and return the validated new settings.

    `refuse(current settings)` returns why the table must not be added (e.g. "client 'x'
    already exists"), or None; it runs under the lock, on the file as it is now. Nothing is
    written unless the whole new file passes parse_settings. A missing file is created (0600).
    """
    path = Path(path)
    source = str(path)
    with folder_lock(path.parent):
        text = _read(path)
        current = _parse(text, source)  # a broken file is reported as it is, never edited further
        problem = refuse(current)
        if problem is not None:
            raise ConfigError(f"{source}: {problem}")
        separator = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        new_text = text + separator + render_table(array, fields, comment)
        settings = _parse(new_text, source)
        write_atomically(path, new_text.encode(), mode=_mode(path))
    return settings


def edit_document(path: Path, change: Callable[[Any, Settings], str | None]) -> Settings:
    """Change the settings file in place, keeping every comment and the layout, and return the result.

    `change(document, current settings)` edits a tomlkit document (a style-preserving TOML
    parser: what it does not touch is written back byte for byte) and returns why it must not,
    or None; it runs under the folder lock on the file as it is now. Nothing is written unless
    the whole new file passes parse_settings; the file is replaced atomically.
    """
    import tomlkit

    source = str(path)
    with folder_lock(path.parent):
        if not path.is_file():
            raise ConfigError(f"{source}: file not found")
        text = _read(path)
        current = _parse(text, source)  # a broken file is reported as it is, never edited further
        document = tomlkit.parse(text)
        problem = change(document, current)
        if problem is not None:
            raise ConfigError(f"{source}: {problem}")
        new_text = tomlkit.dumps(document)
        settings = _parse(new_text, source)
        write_atomically(path, new_text.encode(), mode=_mode(path))
    return settings


def find_table(document: Any, array: str, key: str, value: str) -> tuple[Any, int] | None:
    """Return (the array of tables, the index) of the `[[array]]` table whose `key` is `value`."""
    tables = document.get(array)
    if tables is None:
        return None
    for index, table in enumerate(tables):
        if table.get(key) == value:
            return tables, index
    return None
