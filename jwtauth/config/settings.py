"""Settings: the server's configuration from the TOML file and the environment, validated once."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jwtauth.config.client_metadata import ClientMetadataSettings, parse_client_metadata
from jwtauth.config.clients import Client, User, parse_client, parse_user
from jwtauth.config.defaults import DEFAULTS
from jwtauth.config.environment import overlay
from jwtauth.config.reader import ConfigError, TableReader
from jwtauth.keys import ALGORITHMS
from jwtauth.oidc.pairwise import PAIRWISE
from jwtauth.verify.fetch import is_loopback

CLOCK_LEEWAY = 60  # seconds of clock skew and delivery delay allowed around a token's lifetime

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


@dataclass(frozen=True)
class Settings:
    """Everything the server needs, validated; built once by the CLI and handed to create_app."""

    issuer: str
    clients: tuple[Client, ...] = ()
    users: tuple[User, ...] = ()
    default_audience: str = DEFAULTS["default_audience"]
    allow_http_issuer: bool = DEFAULTS["allow_http_issuer"]
    access_token_ttl: int = DEFAULTS["lifetimes.access_token"]
    code_ttl: int = DEFAULTS["lifetimes.authorization_code"]
    refresh_idle_ttl: int = DEFAULTS["lifetimes.refresh_idle"]
    refresh_absolute_ttl: int = DEFAULTS["lifetimes.refresh_absolute"]
    refresh_grace_seconds: float = float(DEFAULTS["lifetimes.refresh_grace"])
    keys_dir: Path = Path(DEFAULTS["keys.dir"])
    signing_algorithm: str = DEFAULTS["keys.algorithm"]
    jwks_max_age: int = DEFAULTS["keys.jwks_max_age"]
    publish_ahead: int = DEFAULTS["keys.publish_ahead"]
    revocations_max_age: int = DEFAULTS["keys.revocations_max_age"]
    redis_url: str | None = DEFAULTS["redis.url"]
    redis_prefix: str = DEFAULTS["redis.prefix"]
    trusted_proxies: tuple[str, ...] = DEFAULTS["limits.trusted_proxies"]
    max_failures: int = DEFAULTS["limits.max_failures"]
    failure_window: int = DEFAULTS["limits.window"]
    client_max_failures: int = DEFAULTS["limits.client_max_failures"]
    known_device_ttl: int = DEFAULTS["limits.known_device_ttl"]
    client_auth_failures: int = DEFAULTS["limits.client_auth_failures"]
    # The operator's page overrides (branding), checked before the packaged templates.
    templates_dir: Path | None = None
    dpop_proof_window: int = DEFAULTS["dpop.proof_window"]
    dpop_require_nonce: bool = DEFAULTS["dpop.require_nonce"]
    dpop_nonce_lifetime: int = DEFAULTS["dpop.nonce_lifetime"]
    session_ttl: int = DEFAULTS["sessions.lifetime"]
    client_id_metadata: ClientMetadataSettings = field(default_factory=ClientMetadataSettings)
    metrics_port: int | None = DEFAULTS["metrics.port"]
    accept_token_endpoint_audience: bool = DEFAULTS["client_auth.accept_token_endpoint_audience"]
    jwks_insecure_loopback: bool = DEFAULTS["client_auth.allow_insecure_loopback"]
    par_required: bool = DEFAULTS["par.require"]
    par_lifetime: int = DEFAULTS["par.lifetime"]
    pairwise_salt: str | None = field(default=DEFAULTS["oidc.pairwise_salt"], repr=False)
    source: str = field(default="<defaults>", compare=False)

    @property
    def token_horizon(self) -> int:
        """Return how long after issue an access token may still be presented: the longest
        access-token lifetime (the default or any client's) + leeway.

        A key that stopped signing stays published this long, and a revoked family's tombstone
        lives this long, so neither outlives nor undercuts the tokens it vouches for.
        """
        lifetimes = [c.access_token_lifetime for c in self.clients if c.access_token_lifetime]
        return max([self.access_token_ttl, *lifetimes]) + CLOCK_LEEWAY

    def refresh_lifetimes(self, client: Client) -> tuple[int, int]:
        """Return a client's refresh-token idle and absolute lifetimes: its own, else [lifetimes]'.

        Refresh tokens are opaque and die with their family in Redis, so unlike access tokens
        they set no key-retirement horizon: a family outliving the key of the day is harmless.
        """
        absolute = client.refresh_absolute_lifetime or self.refresh_absolute_ttl
        return min(client.refresh_token_lifetime or self.refresh_idle_ttl, absolute), absolute

    @property
    def audience(self) -> str:
        """Return the audience of tokens whose client names none (defaults to the issuer)."""
        return self.default_audience or self.issuer


def _check_networks(reader: TableReader, key: str, values: tuple[str, ...]) -> tuple[str, ...]:
    try:
        parse_networks(values)
    except ValueError as exc:
        raise reader.error(key, str(exc)) from None
    return values


def _unique(reader: TableReader, key: str, member: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ConfigError(f"{reader.source}: {key}[{i}].{member}: duplicate {name!r}")
        seen.add(name)


def _templates_dir(pages: TableReader, source: str, env: Mapping[str, str]) -> Path | None:
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


def _issuer(root: TableReader, env: Mapping[str, str]) -> str:
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
        elif parts.scheme == "http" and not (is_loopback(parts.hostname) or _allows_http(root)):
            # Under http:// the CSRF cookie cannot be __Host-: any sibling host could plant one
            # (cookie tossing, issue 18). Loopback is for demos; anything else is development only.
            valid = False
            problem = f"{issuer!r}: http:// is for loopback only (set allow_http_issuer = true to develop)"
        if not valid:
            if env.get("JWTAUTH_ISSUER"):  # the file is not to blame: name the variable
                raise ConfigError(f"JWTAUTH_ISSUER: {problem}")
            raise root.error("issuer", problem)
    return issuer.rstrip("/")


def _allows_http(root: TableReader) -> bool:
    allowed: bool = root.get("allow_http_issuer", bool)
    return allowed


def _key_timing(keys: TableReader) -> tuple[str, int, int]:
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


def _refresh_lifetimes(life: TableReader) -> tuple[int, int, float]:
    """Return the refresh family's idle and absolute lifetimes and the rotation grace."""
    absolute = life.positive("refresh_absolute")
    idle = life.positive("refresh_idle", min(life.default("refresh_idle"), absolute))
    if idle > absolute:
        raise life.error("refresh_idle", f"{idle} exceeds refresh_absolute {absolute}")
    grace = life.get("refresh_grace", int)
    if not 0 <= grace <= 60:
        raise life.error("refresh_grace", f"must be between 0 and 60 seconds, got {grace}")
    return idle, absolute, float(grace)


def _port(table: TableReader, key: str) -> int | None:
    """Return an optional TCP port (1-65535)."""
    return table.positive(key, maximum=65535) if key in table.table else None


def _array(root: TableReader, data: Mapping[str, Any], name: str) -> list[TableReader]:
    """Return a reader for each table of an array of tables (`[[clients]]`)."""
    tables = data.get(name, [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise root.error(name, f"must be an array of tables ([[{name}]])")
    return [TableReader(root.source, f"{name}[{i}]", t) for i, t in enumerate(tables)]


def _accounts(root: TableReader, data: Mapping[str, Any]) -> tuple[tuple[Client, ...], tuple[User, ...]]:
    """Return the [[clients]] and [[users]] tables, each validated, names unique."""
    clients = tuple(parse_client(table) for table in _array(root, data, "clients"))
    users = tuple(parse_user(table) for table in _array(root, data, "users"))
    _unique(root, "clients", "id", [c.client_id for c in clients])
    _unique(root, "users", "username", [u.username for u in users])
    # A token's sub is a username (or the sub of an id_token), or a client id for the client
    # itself: one name for both would make a token's subject ambiguous (issue 18).
    names = {u.username for u in users} | {u.subject for u in users}
    for i, client in enumerate(clients):
        if client.client_id in names:
            problem = f"{client.client_id!r} is also a user's name or sub"
            raise ConfigError(f"{root.source}: clients[{i}].id: {problem}")
    # OpenID Connect Core §2: a subject identifier names one user, never two.
    _unique(root, "users", "sub", [u.subject for u in users])
    return clients, users


def _check_client_refresh(root: TableReader, clients: tuple[Client, ...], absolute: int) -> None:
    """Refuse a client's refresh_token_lifetime past [lifetimes] refresh_absolute, as [lifetimes] does.

    Past the client's own refresh_absolute_lifetime, config/clients.py refused it already.
    """
    for i, client in enumerate(clients):
        idle = client.refresh_token_lifetime
        if idle is not None and client.refresh_absolute_lifetime is None and idle > absolute:
            problem = f"{idle} exceeds [lifetimes] refresh_absolute {absolute}"
            raise ConfigError(f"{root.source}: clients[{i}].refresh_token_lifetime: {problem}")


_MORE_TABLES = ("client_auth", "par", "oidc", "metrics")
MIN_SALT = 32  # characters of [oidc] pairwise_salt: at least 128 bits from `openssl rand -hex 16`


def _table(root: TableReader, name: str) -> TableReader:
    """Return a settings table, its keys checked against DEFAULTS."""
    table = root.table_at(name)
    table.unknown_keys(_table_keys(name))
    return table


def parse_settings(data: Mapping[str, Any], source: str, env: Mapping[str, str]) -> Settings:
    """Validate a parsed TOML document plus environment overrides into Settings."""
    data, origins = overlay(data, env)  # JWTAUTH_<TABLE>_<KEY> wins over the file
    root = TableReader(source, "", data, origins)
    tables = ("lifetimes", "keys", "limits", "redis", "pages", "dpop", "client_id_metadata", "sessions")
    root.unknown_keys({*_table_keys(""), *tables, *_MORE_TABLES, "clients", "users"})
    life, keys, limits, redis, pages, dpop, documents, sessions = (root.table_at(k) for k in tables)
    readers = (life, keys, limits, redis, pages, dpop, documents, sessions)
    for name, table in zip(tables, readers, strict=True):
        table.unknown_keys(_table_keys(name))
    client_auth, par, oidc, metrics = (_table(root, name) for name in _MORE_TABLES)
    issuer = _issuer(root, env)
    algorithm, max_age, publish_ahead = _key_timing(keys)
    clients, users = _accounts(root, data)
    idle, absolute, grace = _refresh_lifetimes(life)
    _check_client_refresh(root, clients, absolute)
    return Settings(
        issuer=issuer,
        clients=clients,
        users=users,
        default_audience=root.get("default_audience", str),
        allow_http_issuer=root.get("allow_http_issuer", bool),
        access_token_ttl=life.positive("access_token", maximum=86400),
        code_ttl=life.positive("authorization_code", maximum=600),
        refresh_idle_ttl=idle,
        refresh_absolute_ttl=absolute,
        refresh_grace_seconds=grace,
        keys_dir=Path(env.get("JWTAUTH_KEYS_DIR") or keys.get("dir", str)),
        signing_algorithm=algorithm,
        jwks_max_age=max_age,
        publish_ahead=publish_ahead,
        revocations_max_age=keys.positive("revocations_max_age", maximum=3600),
        redis_url=env.get("JWTAUTH_REDIS_URL") or redis.optional("url", str) or None,
        redis_prefix=env.get("JWTAUTH_REDIS_PREFIX") or redis.get("prefix", str),
        trusted_proxies=_check_networks(limits, "trusted_proxies", limits.strings("trusted_proxies")),
        max_failures=limits.positive("max_failures", maximum=1000),
        failure_window=limits.positive("window", maximum=86400),
        client_max_failures=limits.positive("client_max_failures", maximum=100_000),
        known_device_ttl=limits.positive("known_device_ttl", maximum=400 * 86400),
        client_auth_failures=limits.positive("client_auth_failures", maximum=100_000),
        templates_dir=_templates_dir(pages, source, env),
        dpop_proof_window=dpop.positive("proof_window", maximum=600),
        dpop_require_nonce=dpop.get("require_nonce", bool),
        dpop_nonce_lifetime=dpop.positive("nonce_lifetime", maximum=86400),
        session_ttl=sessions.positive("lifetime", maximum=30 * 86400),
        client_id_metadata=parse_client_metadata(documents, issuer),
        accept_token_endpoint_audience=client_auth.get("accept_token_endpoint_audience", bool),
        jwks_insecure_loopback=_dev_only(client_auth, "allow_insecure_loopback", issuer),
        par_required=par.get("require", bool),
        par_lifetime=par.positive("lifetime", maximum=600),
        pairwise_salt=_pairwise_salt(oidc, clients),
        metrics_port=_port(metrics, "port"),
        source=source,
    )


def _pairwise_salt(oidc: TableReader, clients: tuple[Client, ...]) -> str | None:
    """Return `[oidc] pairwise_salt`, required once a client is pairwise (Core §8.1)."""
    salt = oidc.optional("pairwise_salt", str)
    if salt is not None and len(salt) < MIN_SALT:
        raise oidc.error("pairwise_salt", f"must be at least {MIN_SALT} characters (openssl rand -hex 32)")
    pairwise = [c.client_id for c in clients if c.subject_type == PAIRWISE]
    if pairwise and salt is None:
        raise oidc.error(
            "pairwise_salt", f"is required: client {pairwise[0]!r} has subject_type = \"pairwise\""
        )
    return salt


def _dev_only(table: TableReader, key: str, issuer: str) -> bool:
    """Return a development-only switch, refused with an https (production) issuer."""
    value = table.get(key, bool)
    if value and issuer.startswith("https://"):
        raise table.error(key, "is for development only; refused with an https issuer")
    return value


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
    if settings.issuer:
        return settings
    parts = urlsplit(issuer)
    if parts.scheme == "http" and not (is_loopback(parts.hostname) or settings.allow_http_issuer):
        # The same rule as a configured issuer (cookie tossing, issue 18).
        raise ConfigError(
            f"the issuer would be {issuer}: http:// is for loopback only; "
            "set JWTAUTH_ISSUER=https://… (or allow_http_issuer = true to develop)"
        )
    return replace(settings, issuer=issuer.rstrip("/"))
