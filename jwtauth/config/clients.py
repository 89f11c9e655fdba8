"""Clients and users from the settings file: the records and their validation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from jwtauth.accounts.hashing import HashFormatError, check_format, is_fast
from jwtauth.config.client_auth import AUTH_KEYS, FAPI2, parse_client_auth
from jwtauth.config.reader import TableReader
from jwtauth.oauth.device import GRANT_TYPE as DEVICE_GRANT
from jwtauth.oauth.device import SHORT_NAME as DEVICE_SHORT
from jwtauth.oauth.device import grant_name
from jwtauth.oidc.claims import STANDARD_CLAIMS, parse_user_claims, valid_subject
from jwtauth.oidc.pairwise import PAIRWISE, SUBJECT_TYPES, sector_identifier
from jwtauth.verify.fetch import is_loopback

GRANT_TYPES = (
    "authorization_code", "implicit", "password", "client_credentials", "refresh_token", DEVICE_GRANT,
)  # fmt: skip
# What the settings file and `jwtauth clients add --grant` accept: the short name means the URN.
GRANT_NAMES = (*GRANT_TYPES, DEVICE_SHORT)

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "\\"}


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
    # RFC 9449 §5.2 (the dpop_bound_access_tokens client metadata): every token request needs a proof.
    require_dpop: bool = False
    # OpenID Connect: the operator's own app; a signed-in user is never asked to consent.
    first_party: bool = False
    # RFC 8252 §8.3: `localhost` redirect URIs match on any port only for clients that opt in.
    allow_localhost: bool = False
    # RFC 7523 §2.2 private_key_jwt: the client's public keys, inline (canonical JSON) or by URL.
    jwks: str | None = None
    jwks_uri: str | None = None
    # RFC 9126 §6 (require_pushed_authorization_requests): /authorize takes only a request_uri.
    require_par: bool = False
    profile: str | None = None  # "fapi2": the FAPI 2.0 Security Profile (config/client_auth.py)
    # OpenID Connect RP-Initiated Logout §3.1 and Back-Channel Logout §2.2 client metadata.
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False
    # Browser origins that may call the token, userinfo and revocation endpoints (CORS).
    allowed_origins: tuple[str, ...] = ()
    # OpenID Connect Core §8: "public" (one sub for every client) or "pairwise" (oidc/pairwise.py).
    subject_type: str = "public"
    # During a secret rotation (`jwtauth clients rotate-secret`) the old secret also passes,
    # until this time (seconds since the epoch).
    previous_secret_hash: str | None = None
    previous_secret_not_after: float | None = None
    # Per-client token options: its access tokens' lifetime (else [lifetimes] access_token), its
    # refresh tokens' idle and absolute lifetimes (else [lifetimes] refresh_idle, refresh_absolute)
    # and static claims every access token of this client carries (never a registered one).
    access_token_lifetime: int | None = None
    refresh_token_lifetime: int | None = None
    refresh_absolute_lifetime: int | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def uses_keys(self) -> bool:
        """Return whether the client authenticates with private_key_jwt (RFC 7523 §2.2)."""
        return self.jwks is not None or self.jwks_uri is not None

    @property
    def public(self) -> bool:
        """Return whether the client has no credentials at all (RFC 6749 §2.1)."""
        return self.secret_hash is None and not self.uses_keys

    @property
    def fapi2(self) -> bool:
        """Return whether the FAPI 2.0 Security Profile applies to this client."""
        return self.profile == FAPI2


@dataclass(frozen=True)
class User:
    """A resource owner who may log in."""

    username: str
    password_hash: str
    # OpenID Connect Core §2: a stable identifier, never reassigned (`jwtauth users add` draws
    # one). A table without it, written before OpenID Connect, keeps its username as subject.
    sub: str = ""
    claims: dict[str, Any] = field(default_factory=dict, compare=False)  # Core §5.1
    # The table's `claims = {...}`: static claims every access token issued for this user carries,
    # beside its client's (never a registered one; never in id_tokens or userinfo, see README).
    static_claims: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def subject(self) -> str:
        """Return the OpenID Connect subject identifier (Core §2)."""
        return self.sub or self.username


def _check_hash(reader: TableReader, key: str, value: str, *, fast_allowed: bool = False) -> str:
    """Refuse a hash the checker cannot read; a fast one only where `fast_allowed` (generated secrets)."""
    if is_fast(value) and not fast_allowed:
        # A password is chosen by a human: only a slow KDF protects it (issue 18).
        raise reader.error(key, "a fast hmac-sha256 hash is for generated client secrets; use scrypt")
    try:
        check_format(value)
    except HashFormatError as exc:
        raise reader.error(key, f"{exc}; make one with `jwtauth hash-secret`") from None
    return value


def check_redirect_uri(reader: TableReader, key: str, uri: str) -> str:
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
    try:
        parts.port  # noqa: B018  # RFC 3986 §3.2.3: raises past 65535, which the page would 500 on
    except ValueError:
        raise reader.error(key, f"{uri!r} has a port outside 0..65535") from None
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


def _check_scopes(reader: TableReader, key: str, scopes: tuple[str, ...]) -> tuple[str, ...]:
    for scope in scopes:
        if not scope or not set(scope) <= _SCOPE_CHARS:
            raise reader.error(key, f"{scope!r} is not a valid scope token (RFC 6749 §3.3)")
    return scopes


LOGOUT_KEYS = ("post_logout_redirect_uris", "backchannel_logout_uri", "backchannel_logout_session_required")
_CLIENT_KEYS = (
    "id", "name", "secret_hash", "public", "redirect_uris", "grant_types", "scopes", "default_scope",
    "audiences", "require_pkce", "require_dpop", "first_party", "allow_localhost", *LOGOUT_KEYS,
    "allowed_origins", "subject_type",
)  # fmt: skip


def _credentials(reader: TableReader) -> tuple[bool, str | None]:
    """Return `public` and `secret_hash`: a client has a secret, keys (jwks, jwks_uri) or nothing."""
    public = reader.get("public", bool, False)
    secret_hash = reader.optional("secret_hash", str)
    if public and secret_hash is not None:
        raise reader.error("secret_hash", "a public client has no secret; remove one of the two")
    keyed = "jwks" in reader.table or "jwks_uri" in reader.table
    if not public and secret_hash is None and not keyed:
        raise reader.error(
            "secret_hash", "is required for a confidential client (or jwks/jwks_uri, or public = true)"
        )
    if secret_hash is not None:
        _check_hash(reader, "secret_hash", secret_hash, fast_allowed=True)
    return public, secret_hash


def parse_client(reader: TableReader) -> Client:
    reader.unknown_keys({*_CLIENT_KEYS, *AUTH_KEYS, *PREVIOUS_SECRET, *TOKEN_OPTIONS})
    client_id = reader.get("id", str, required=True)
    if not client_id or len(client_id) > 128 or not client_id.isprintable() or ":" in client_id:
        raise reader.error("id", "must be 1-128 printable characters without ':'")
    public, secret_hash = _credentials(reader)
    grants = reader.strings("grant_types", ("client_credentials",))
    for grant in grants:
        if grant not in GRANT_NAMES:
            raise reader.error("grant_types", f"unknown grant {grant!r} (known: {', '.join(GRANT_NAMES)})")
    grants = tuple(grant_name(g) for g in grants)
    if public and {"client_credentials", "password"} & set(grants):
        raise reader.error("grant_types", "a public client cannot use client_credentials or password")
    uris = tuple(check_redirect_uri(reader, "redirect_uris", u) for u in reader.strings("redirect_uris"))
    if {"authorization_code", "implicit"} & set(grants) and not uris:
        raise reader.error("redirect_uris", "is required for authorization_code and implicit")
    scopes = _check_scopes(reader, "scopes", reader.strings("scopes"))
    default = tuple(reader.get("default_scope", str, "").split())
    _check_scopes(reader, "default_scope", default)
    if not set(default) <= set(scopes):
        raise reader.error("default_scope", f"{' '.join(default)!r} is not within scopes {list(scopes)}")
    auth = parse_client_auth(reader, secret=secret_hash is not None, public=public, grants=set(grants))
    fapi2 = auth.profile == FAPI2
    return Client(
        client_id=client_id,
        name=reader.get("name", str, client_id),
        secret_hash=secret_hash,
        redirect_uris=uris,
        grant_types=frozenset(grants),
        scopes=frozenset(scopes),
        default_scope=default,
        audiences=reader.strings("audiences"),
        # FAPI 2.0 §5.3.2.2: PKCE S256, PAR and sender-constrained (DPoP) tokens for every request.
        require_pkce=reader.get("require_pkce", bool, False) or public or fapi2,
        require_dpop=reader.get("require_dpop", bool, False) or fapi2,
        first_party=reader.get("first_party", bool, False),
        allow_localhost=reader.get("allow_localhost", bool, False),
        jwks=auth.jwks,
        jwks_uri=auth.jwks_uri,
        require_par=auth.require_par or fapi2,
        profile=auth.profile,
        **_previous_secret(reader, secret_hash),
        **_token_options(reader),
        **_browser_fields(reader),
        subject_type=_subject_type(reader, uris),
    )


PREVIOUS_SECRET = ("previous_secret_hash", "previous_secret_not_after")
LIFETIMES = ("access_token_lifetime", "refresh_token_lifetime", "refresh_absolute_lifetime")
TOKEN_OPTIONS = (*LIFETIMES, "claims")
# Claims the server sets (RFC 9068 §2.2, RFC 7519 §4.1, RFC 9449 §6, OpenID Connect Core §2):
# a static claim may never replace one, nor the ones a verifier keys decisions on.
RESERVED_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "scope", "auth_time", "acr", "amr",
     "fid", "cnf", "azp", "nonce", "at_hash", "c_hash", "sid", "typ", "groups", "roles", "entitlements"}
)  # fmt: skip
MAX_CLAIMS_BYTES = 1024  # every token of the client (or user) carries them: keep tokens small


def _token_options(reader: TableReader) -> dict[str, Any]:
    """Return the client's token lifetimes and static claims, those it sets."""
    out: dict[str, Any] = {}
    if LIFETIMES[0] in reader.table:
        out[LIFETIMES[0]] = reader.positive(LIFETIMES[0], maximum=86400)  # as [lifetimes] access_token
    for key in LIFETIMES[1:]:
        if key in reader.table:
            out[key] = reader.positive(key)  # as [lifetimes] refresh_idle and refresh_absolute
    idle, absolute = out.get(LIFETIMES[1]), out.get(LIFETIMES[2])
    if idle is not None and absolute is not None and idle > absolute:
        raise reader.error(LIFETIMES[1], f"{idle} exceeds refresh_absolute_lifetime {absolute}")
    claims = static_claims(reader)
    return out | ({"claims": claims} if claims else {})


def static_claims(reader: TableReader) -> dict[str, Any]:
    """Return a `[[clients]]` or `[[users]]` table's static claims, each name unregistered, size capped."""
    claims = reader.table.get("claims")
    if claims is None:
        return {}
    if not isinstance(claims, dict):
        raise reader.error("claims", "must be a table of claim names and values")
    reserved = sorted(RESERVED_CLAIMS & set(claims))
    if reserved:
        raise reader.error("claims", f"{reserved[0]!r} is set by the server and cannot be configured")
    try:
        size = len(json.dumps(claims, separators=(",", ":"), default=_no_json).encode())
    except TypeError as exc:
        raise reader.error("claims", str(exc)) from None
    if size > MAX_CLAIMS_BYTES:
        raise reader.error("claims", f"take {size} bytes as JSON; at most {MAX_CLAIMS_BYTES}")
    return dict(claims)


def _no_json(value: object) -> object:
    raise TypeError(f"{value!r} is not a JSON value (use strings, numbers, booleans, arrays, tables)")


def _previous_secret(reader: TableReader, secret_hash: str | None) -> dict[str, Any]:
    """Return the rotation's old secret hash and its end (a TOML datetime with an offset), or nothing."""
    old, until = (reader.table.get(key) for key in PREVIOUS_SECRET)
    if old is None and until is None:
        return {}
    if old is None or until is None:
        present, missing = PREVIOUS_SECRET if old is not None else PREVIOUS_SECRET[::-1]
        raise reader.error(present, f"needs {missing} too")
    if secret_hash is None:
        raise reader.error(PREVIOUS_SECRET[0], "a public client has no secret to rotate")
    _check_hash(reader, PREVIOUS_SECRET[0], reader.get(PREVIOUS_SECRET[0], str))
    if not isinstance(until, datetime) or until.tzinfo is None:
        problem = "must be a date and time with an offset, e.g. 2027-01-31T12:00:00Z"
        raise reader.error(PREVIOUS_SECRET[1], problem)
    return {"previous_secret_hash": old, "previous_secret_not_after": until.timestamp()}


def _subject_type(reader: TableReader, uris: tuple[str, ...]) -> str:
    """Return the client's subject type; pairwise needs one redirect host (Core §8.1)."""
    kind = reader.get("subject_type", str, "public")
    if kind not in SUBJECT_TYPES:
        raise reader.error("subject_type", f"{kind!r} is not one of {', '.join(SUBJECT_TYPES)}")
    if kind == PAIRWISE and sector_identifier(uris) is None:
        raise reader.error(
            "subject_type",
            "pairwise needs redirect_uris that all share one host: it is the sector identifier "
            "(OpenID Connect Core §8.1)",
        )
    return kind




ORIGINS = "allowed_origins"


def _check_origin(reader: TableReader, key: str, origin: str) -> str:
    """Check a CORS origin: scheme, host and port only (RFC 6454 §6.2), https or loopback http."""
    check_redirect_uri(reader, key, origin)
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or parts.path or parts.query or origin.endswith(("?", "/")):
        raise reader.error(key, f"{origin!r} must be an origin like https://app.example.com (no path)")
    return origin


def _browser_fields(reader: TableReader) -> dict[str, Any]:
    """Return the client's logout and CORS metadata, each URI checked like a redirect URI."""
    uris = tuple(check_redirect_uri(reader, LOGOUT_KEYS[0], u) for u in reader.strings(LOGOUT_KEYS[0]))
    backchannel = reader.optional(LOGOUT_KEYS[1], str)
    if backchannel is not None:
        check_redirect_uri(reader, LOGOUT_KEYS[1], backchannel)
        if urlsplit(backchannel).scheme not in ("http", "https"):
            # Back-Channel Logout §2.2: the server POSTs to it, so it is an http(s) URL.
            raise reader.error(LOGOUT_KEYS[1], f"{backchannel!r} must be an https URL")
    return {
        "post_logout_redirect_uris": uris,
        "backchannel_logout_uri": backchannel,
        "backchannel_logout_session_required": reader.get(LOGOUT_KEYS[2], bool, False),
        ORIGINS: tuple(_check_origin(reader, ORIGINS, o) for o in reader.strings(ORIGINS)),
    }


def parse_user(reader: TableReader) -> User:
    reader.unknown_keys({"username", "password_hash", "sub", "claims", *STANDARD_CLAIMS})
    username = reader.get("username", str, required=True)
    if not username or len(username) > 256:
        raise reader.error("username", "must be 1-256 characters")
    sub = reader.get("sub", str, "")
    if "sub" in reader.table and not valid_subject(sub):
        raise reader.error("sub", "must be 1-255 printable ASCII characters (OpenID Connect Core §2)")
    return User(
        username,
        _check_hash(reader, "password_hash", reader.get("password_hash", str, required=True)),
        sub=sub,
        claims=parse_user_claims(reader),
        static_claims=static_claims(reader),
    )
