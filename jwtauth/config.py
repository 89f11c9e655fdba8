"""Settings from one TOML file plus environment overrides, validated once with clear messages."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from jwtauth.accounts.hashing import HashFormatError, parse_hash
from jwtauth.keys import ALGORITHMS
from jwtauth.verify.fetch import is_loopback

CLOCK_LEEWAY = 60  # seconds of clock skew and delivery delay allowed around a token's lifetime
GRANT_TYPES = ("authorization_code", "implicit", "password", "client_credentials", "refresh_token")

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "\\"}

T = TypeVar("T")

# Every setting's default, once, by its dotted TOML key: the Settings dataclass and the TOML
# reader both read this table, so a default cannot differ between code and file.
DEFAULTS: dict[str, Any] = {
    "issuer": "",
    "default_audience": "",
    "lifetimes.access_token": 900,
    "lifetimes.authorization_code": 60,
    "lifetimes.refresh_idle": 14 * 86400,  # never above refresh_absolute
    "lifetimes.refresh_absolute": 30 * 86400,
    "lifetimes.refresh_grace": 5,
    "keys.dir": "keys",
    "keys.algorithm": "ES256",
    "keys.jwks_max_age": 300,
    "keys.publish_ahead": 300,  # never below jwks_max_age
    "redis.url": None,
    "redis.prefix": "jwtauth:",
    "limits.max_failures": 5,
    "limits.window": 300,
    "limits.trusted_proxies": (),
    "pages.templates": None,
}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    """Parse CIDRs or addresses (`10.0.0.0/8`, `::1`); raise ValueError naming a bad one."""
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or CIDR network") from None
    return tuple(out)


class ConfigError(Exception):
    """The configuration is unusable; the message names the file, the key and the problem."""


@dataclass(frozen=True)
class Client:
    """A registered client (RFC 6749 §2)."""

    client_id: str
    name: str
    secret_hash: str | None
    redirect_uris: tuple[str, ...]
    grant_types: frozenset[str]
    scopes: frozenset[str]
    default_scope: tuple[str, ...]
    audiences: tuple[str, ...]
    require_pkce: bool

    @property
    def public(self) -> bool:
        """Return whether the client has no secret (RFC 6749 §2.1)."""
        return self.secret_hash is None


@dataclass(frozen=True)
class User:
    """A resource owner who may log in."""

    username: str
    password_hash: str


@dataclass(frozen=True)
class Settings:
    """Everything the server needs, validated; built once by the CLI and handed to create_app."""

    issuer: str
    clients: tuple[Client, ...] = ()
    users: tuple[User, ...] = ()
    default_audience: str = DEFAULTS["default_audience"]
    access_token_ttl: int = DEFAULTS["lifetimes.access_token"]
    code_ttl: int = DEFAULTS["lifetimes.authorization_code"]
    refresh_idle_ttl: int = DEFAULTS["lifetimes.refresh_idle"]
    refresh_absolute_ttl: int = DEFAULTS["lifetimes.refresh_absolute"]
    refresh_grace_seconds: float = float(DEFAULTS["lifetimes.refresh_grace"])
    keys_dir: Path = Path(DEFAULTS["keys.dir"])
    signing_algorithm: str = DEFAULTS["keys.algorithm"]
    jwks_max_age: int = DEFAULTS["keys.jwks_max_age"]
    publish_ahead: int = DEFAULTS["keys.publish_ahead"]
    redis_url: str | None = DEFAULTS["redis.url"]
    redis_prefix: str = DEFAULTS["redis.prefix"]
    trusted_proxies: tuple[str, ...] = DEFAULTS["limits.trusted_proxies"]
    max_failures: int = DEFAULTS["limits.max_failures"]
    failure_window: int = DEFAULTS["limits.window"]
    # The operator's page overrides (branding), checked before the packaged templates.
    templates_dir: Path | None = None
    source: str = field(default="<defaults>", compare=False)

    @property
    def token_horizon(self) -> int:
        """Return how long after issue an access token may still be presented: lifetime + leeway.

        A key that stopped signing stays published this long, and a revoked family's tombstone
        lives this long, so neither outlives nor undercuts the tokens it vouches for.
        """
        return self.access_token_ttl + CLOCK_LEEWAY

    @property
    def audience(self) -> str:
        """Return the audience of tokens whose client names none (defaults to the issuer)."""
        return self.default_audience or self.issuer


class _Reader:
    """Typed access to one TOML table that reports errors as `file: dotted.key: problem`."""

    def __init__(self, source: str, path: str, table: Mapping[str, Any]) -> None:
        self.source, self.path, self.table = source, path, table

    def error(self, key: str, problem: str) -> ConfigError:
        where = f"{self.path}.{key}" if self.path else key
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

    def table_at(self, key: str) -> _Reader:
        value = self.table.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, "must be a table")
        return _Reader(self.source, f"{self.path}.{key}" if self.path else key, value)


def _check_hash(reader: _Reader, key: str, value: str) -> str:
    try:
        parse_hash(value)
    except HashFormatError as exc:
        raise reader.error(key, f"{exc}; make one with `jwtauth hash-secret`") from None
    return value


def _check_redirect_uri(reader: _Reader, key: str, uri: str) -> str:
    # RFC 6749 §3.1.2: absolute URI, no fragment. RFC 9700 §2.1: exact string matching later.
    if not uri.isascii() or any(c.isspace() or not c.isprintable() for c in uri):
        # RFC 3986 §2: a URI is printable ASCII; whitespace or CR/LF would also reach Location.
        raise reader.error(key, f"{uri!r} must be printable ASCII without spaces (percent-encode)")
    try:
        parts = urlsplit(uri)
    except ValueError:  # e.g. a broken IPv6 literal: a config error, not a traceback
        raise reader.error(key, f"{uri!r} is not an absolute URI") from None
    if not parts.scheme or (not parts.netloc and parts.scheme in ("http", "https")):
        raise reader.error(key, f"{uri!r} is not an absolute URI")
    if parts.fragment or "#" in uri:
        raise reader.error(key, f"{uri!r} must not contain a fragment (RFC 6749 §3.1.2)")
    if parts.scheme in ("http", "https") and "@" in parts.netloc:
        raise reader.error(key, f"{uri!r} must not contain user information (RFC 9110 §4.2.4)")
    if parts.scheme not in ("http", "https") and "." not in parts.scheme:
        # RFC 8252 §7.1: a native app's private-use scheme is a reverse domain name it controls,
        # which also keeps out javascript:, data:, vbscript:, file: and their kin (RFC 9700 §4.1).
        raise reader.error(
            key, f"{uri!r}: use https, loopback http or a reverse-domain scheme like com.example.app:"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise reader.error(key, f"{uri!r}: plain http is only allowed for loopback (RFC 9700)")
    return uri


def _check_scopes(reader: _Reader, key: str, scopes: tuple[str, ...]) -> tuple[str, ...]:
    for scope in scopes:
        if not scope or not set(scope) <= _SCOPE_CHARS:
            raise reader.error(key, f"{scope!r} is not a valid scope token (RFC 6749 §3.3)")
    return scopes


def _check_networks(reader: _Reader, key: str, values: tuple[str, ...]) -> tuple[str, ...]:
    try:
        parse_networks(values)
    except ValueError as exc:
        raise reader.error(key, str(exc)) from None
    return values


def _client(reader: _Reader) -> Client:
    reader.unknown_keys(
        {
            "id",
            "name",
            "secret_hash",
            "public",
            "redirect_uris",
            "grant_types",
            "scopes",
            "default_scope",
            "audiences",
            "require_pkce",
        }
    )
    client_id = reader.get("id", str, required=True)
    if not client_id or len(client_id) > 128 or not client_id.isprintable() or ":" in client_id:
        raise reader.error("id", "must be 1-128 printable characters without ':'")
    public = reader.get("public", bool, False)
    secret_hash = reader.optional("secret_hash", str)
    if public and secret_hash is not None:
        raise reader.error("secret_hash", "a public client has no secret; remove one of the two")
    if not public and secret_hash is None:
        raise reader.error("secret_hash", "is required for a confidential client (or set public = true)")
    if secret_hash is not None:
        _check_hash(reader, "secret_hash", secret_hash)
    grants = reader.strings("grant_types", ("client_credentials",))
    for grant in grants:
        if grant not in GRANT_TYPES:
            raise reader.error("grant_types", f"unknown grant {grant!r} (known: {', '.join(GRANT_TYPES)})")
    if public and {"client_credentials", "password"} & set(grants):
        raise reader.error("grant_types", "a public client cannot use client_credentials or password")
    uris = tuple(_check_redirect_uri(reader, "redirect_uris", u) for u in reader.strings("redirect_uris"))
    if {"authorization_code", "implicit"} & set(grants) and not uris:
        raise reader.error("redirect_uris", "is required for authorization_code and implicit")
    scopes = _check_scopes(reader, "scopes", reader.strings("scopes"))
    default = tuple(reader.get("default_scope", str, "").split())
    _check_scopes(reader, "default_scope", default)
    if not set(default) <= set(scopes):
        raise reader.error("default_scope", f"{' '.join(default)!r} is not within scopes {list(scopes)}")
    return Client(
        client_id=client_id,
        name=reader.get("name", str, client_id),
        secret_hash=secret_hash,
        redirect_uris=uris,
        grant_types=frozenset(grants),
        scopes=frozenset(scopes),
        default_scope=default,
        audiences=reader.strings("audiences"),
        require_pkce=reader.get("require_pkce", bool, False) or public,
    )


def _user(reader: _Reader) -> User:
    reader.unknown_keys({"username", "password_hash"})
    username = reader.get("username", str, required=True)
    if not username or len(username) > 256:
        raise reader.error("username", "must be 1-256 characters")
    return User(
        username, _check_hash(reader, "password_hash", reader.get("password_hash", str, required=True))
    )


def _unique(reader: _Reader, key: str, member: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ConfigError(f"{reader.source}: {key}[{i}].{member}: duplicate {name!r}")
        seen.add(name)


def _templates_dir(pages: _Reader, source: str, env: Mapping[str, str]) -> Path | None:
    """Return the page-override folder: set, else `templates/` beside the file or the cwd."""
    chosen = env.get("JWTAUTH_PAGES_TEMPLATES") or pages.optional("templates", str)
    beside = Path(source).parent if Path(source).is_file() else Path()
    if chosen:
        folder = beside / chosen  # a relative path is read from the settings file's folder
        if not folder.is_dir():
            raise pages.error("templates", f"{str(folder)!r} is not a folder")
        return folder
    for candidate in (beside / "templates", Path("templates")):
        if candidate.is_dir():
            return candidate
    return None


def _table_keys(table: str) -> set[str]:
    """Return the keys a settings table allows: those DEFAULTS names for it."""
    split = (dotted.rpartition(".") for dotted in DEFAULTS)  # "issuer" -> ("", "", "issuer")
    return {key for prefix, _, key in split if prefix == table}


def _issuer(root: _Reader, env: Mapping[str, str]) -> str:
    issuer = env.get("JWTAUTH_ISSUER") or root.get("issuer", str)
    if issuer:
        # RFC 8414 §2: https URL without query or fragment (http allowed for loopback demos).
        try:
            parts = urlsplit(issuer)
            valid = parts.scheme in ("https", "http") and bool(parts.netloc)
            valid = valid and not (parts.query or parts.fragment)
        except ValueError:  # e.g. a broken IPv6 literal
            valid = False
        if not valid:
            problem = f"{issuer!r} must be an http(s) URL without query or fragment"
            if env.get("JWTAUTH_ISSUER"):  # the file is not to blame: name the variable
                raise ConfigError(f"JWTAUTH_ISSUER: {problem}")
            raise root.error("issuer", problem)
    return issuer.rstrip("/")


def _key_timing(keys: _Reader) -> tuple[str, int, int]:
    """Return the signing algorithm, the JWKS max-age and the publish-ahead delay."""
    algorithm = keys.get("algorithm", str)
    if algorithm not in ALGORITHMS:
        raise keys.error("algorithm", f"{algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    max_age = keys.positive("jwks_max_age", maximum=86400)
    publish_ahead = keys.positive("publish_ahead", max_age, maximum=30 * 86400)
    if max_age > publish_ahead:
        # A resource server may cache JWKS for max_age; a key that signs sooner than that after
        # being published could be unknown to it. The two settings must not contradict.
        raise keys.error("jwks_max_age", f"{max_age} exceeds keys.publish_ahead {publish_ahead}")
    return algorithm, max_age, publish_ahead


def _refresh_lifetimes(life: _Reader) -> tuple[int, int, float]:
    """Return the refresh family's idle and absolute lifetimes and the rotation grace."""
    absolute = life.positive("refresh_absolute")
    idle = life.positive("refresh_idle", min(life.default("refresh_idle"), absolute))
    if idle > absolute:
        raise life.error("refresh_idle", f"{idle} exceeds refresh_absolute {absolute}")
    grace = life.get("refresh_grace", int)
    if not 0 <= grace <= 60:
        raise life.error("refresh_grace", f"must be between 0 and 60 seconds, got {grace}")
    return idle, absolute, float(grace)


def _accounts(root: _Reader, data: Mapping[str, Any]) -> tuple[tuple[Client, ...], tuple[User, ...]]:
    """Return the [[clients]] and [[users]] tables, each validated, names unique."""
    client_tables = data.get("clients", [])
    user_tables = data.get("users", [])
    if not isinstance(client_tables, list) or not all(isinstance(c, dict) for c in client_tables):
        raise root.error("clients", "must be an array of tables ([[clients]])")
    if not isinstance(user_tables, list) or not all(isinstance(u, dict) for u in user_tables):
        raise root.error("users", "must be an array of tables ([[users]])")
    source = root.source
    clients = tuple(_client(_Reader(source, f"clients[{i}]", t)) for i, t in enumerate(client_tables))
    users = tuple(_user(_Reader(source, f"users[{i}]", t)) for i, t in enumerate(user_tables))
    _unique(root, "clients", "id", [c.client_id for c in clients])
    _unique(root, "users", "username", [u.username for u in users])
    return clients, users


def parse_settings(data: Mapping[str, Any], source: str, env: Mapping[str, str]) -> Settings:
    """Validate a parsed TOML document plus environment overrides into Settings."""
    root = _Reader(source, "", data)
    tables = ("lifetimes", "keys", "limits", "redis", "pages")
    root.unknown_keys({*_table_keys(""), *tables, "clients", "users"})
    life, keys, limits, redis, pages = (root.table_at(k) for k in tables)
    for name, table in zip(tables, (life, keys, limits, redis, pages), strict=True):
        table.unknown_keys(_table_keys(name))
    issuer = _issuer(root, env)
    algorithm, max_age, publish_ahead = _key_timing(keys)
    clients, users = _accounts(root, data)
    idle, absolute, grace = _refresh_lifetimes(life)
    return Settings(
        issuer=issuer,
        clients=clients,
        users=users,
        default_audience=root.get("default_audience", str),
        access_token_ttl=life.positive("access_token", maximum=86400),
        code_ttl=life.positive("authorization_code", maximum=600),
        refresh_idle_ttl=idle,
        refresh_absolute_ttl=absolute,
        refresh_grace_seconds=grace,
        keys_dir=Path(env.get("JWTAUTH_KEYS_DIR") or keys.get("dir", str)),
        signing_algorithm=algorithm,
        jwks_max_age=max_age,
        publish_ahead=publish_ahead,
        redis_url=env.get("JWTAUTH_REDIS_URL") or redis.optional("url", str) or None,
        redis_prefix=env.get("JWTAUTH_REDIS_PREFIX") or redis.get("prefix", str),
        trusted_proxies=_check_networks(limits, "trusted_proxies", limits.strings("trusted_proxies")),
        max_failures=limits.positive("max_failures", maximum=1000),
        failure_window=limits.positive("window", maximum=86400),
        templates_dir=_templates_dir(pages, source, env),
        source=source,
    )


def load_settings(path: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the TOML file (or $JWTAUTH_CONFIG) and the environment into validated Settings."""
    env = os.environ if env is None else env
    chosen = path or env.get("JWTAUTH_CONFIG")
    if not chosen:
        return parse_settings({}, "<no config file>", env)
    source = str(chosen)
    try:
        with open(chosen, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{source}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not valid UTF-8") from None
    return parse_settings(data, source, env)


def with_issuer(settings: Settings, issuer: str) -> Settings:
    """Return settings whose issuer is `issuer` unless one was configured."""
    return settings if settings.issuer else replace(settings, issuer=issuer.rstrip("/"))
