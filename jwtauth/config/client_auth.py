"""How a client authenticates and which request rules it opts into: keys, PAR, the FAPI 2.0 profile.

A client proves itself with a secret (RFC 6749 §2.3.1), with a key (RFC 7523 §2.2
`private_key_jwt`: an inline `jwks` table or a `jwks_uri`), or not at all (public). One method
per client, as RFC 7591 §2 `token_endpoint_auth_method` is one value. `client_secret_jwt` is not
offered: it needs the plaintext secret, and we keep only its scrypt hash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from jwtauth.config.reader import TableReader
from jwtauth.verify.fetch import is_loopback
from jwtauth.verify.jwk import _PRIVATE_MEMBERS, usable_keys

AUTH_KEYS: Final = ("jwks", "jwks_uri", "require_par", "profile")  # the [[clients]] keys read here
FAPI2: Final = "fapi2"
PROFILES: Final = (FAPI2,)
MAX_JWKS_KEYS: Final = 10
FAPI2_CODE_TTL: Final = 60  # FAPI 2.0 Security Profile §5.3.2.1: codes live at most 60 s
# FAPI 2.0 §5.3.2.2: the authorization code flow only; no implicit, no password.
_FAPI2_REFUSED_GRANTS: Final = frozenset({"implicit", "password"})


@dataclass(frozen=True)
class ClientAuthFields:
    """The key and request-rule fields of one [[clients]] table, validated."""

    jwks: str | None  # an inline JWK Set as canonical JSON (a frozen record holds no dicts)
    jwks_uri: str | None
    require_par: bool
    profile: str | None


def jwks_json(reader: TableReader, key: str, value: Any) -> str:
    """Return a JWK Set of public signature keys as canonical JSON, or raise naming the problem."""
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list) or not value["keys"]:
        raise reader.error(key, "must be a JWK Set: a table with a non-empty keys array")
    entries = value["keys"]
    if len(entries) > MAX_JWKS_KEYS:
        raise reader.error(key, f"at most {MAX_JWKS_KEYS} keys")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise reader.error(f"{key}.keys[{i}]", "must be a JWK (a table)")
        if _PRIVATE_MEMBERS & entry.keys():
            # The server needs only the public half; a private key here is a leak to fix at once.
            raise reader.error(f"{key}.keys[{i}]", "holds private key material: register the public key only")
        if not isinstance(entry.get("kid"), str) or not entry["kid"]:
            raise reader.error(f"{key}.keys[{i}]", "needs a kid")
    text = json.dumps({"keys": entries}, sort_keys=True, separators=(",", ":"))
    usable = usable_keys(text.encode())
    for i, entry in enumerate(entries):
        if entry["kid"] not in usable:
            raise reader.error(
                f"{key}.keys[{i}]",
                "is not a usable signature key (ES256, RS256/PS256 of 2048+ bits or EdDSA; "
                "unique kid; use=sig)",
            )
    return text


def check_jwks_uri(reader: TableReader, key: str, uri: str) -> str:
    """Return an https JWK Set URL (http only on loopback, for development)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        raise reader.error(key, f"{uri!r} is not a URL") from None
    secure = parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname))
    if not secure or not parts.hostname or parts.fragment or "@" in parts.netloc or len(uri) > 1024:
        raise reader.error(key, f"{uri!r} must be an https URL without user information or fragment")
    return uri


def parse_client_auth(
    reader: TableReader, *, secret: bool, public: bool, grants: set[str]
) -> ClientAuthFields:
    """Read `jwks`, `jwks_uri`, `require_par` and `profile` of a client table."""
    jwks = jwks_json(reader, "jwks", reader.table["jwks"]) if "jwks" in reader.table else None
    uri = reader.optional("jwks_uri", str)
    if uri is not None:
        check_jwks_uri(reader, "jwks_uri", uri)
    if jwks is not None and uri is not None:
        raise reader.error("jwks_uri", "give jwks or jwks_uri, not both (RFC 7591 §2)")
    keyed = jwks is not None or uri is not None
    if keyed and (secret or public):
        what = "secret_hash" if secret else "public"
        raise reader.error(
            what, "a private_key_jwt client (jwks or jwks_uri) has no secret and is not public"
        )
    profile = reader.optional("profile", str)
    if profile is not None and profile not in PROFILES:
        raise reader.error("profile", f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
    if profile == FAPI2:
        # FAPI 2.0 Security Profile §5.3.2.1: confidential clients authenticated by key only.
        if not keyed:
            raise reader.error("profile", "fapi2 needs private_key_jwt: set jwks or jwks_uri")
        refused = sorted(_FAPI2_REFUSED_GRANTS & grants)
        if refused:
            raise reader.error("grant_types", f"fapi2 refuses {', '.join(refused)} (FAPI 2.0 §5.3.2.2)")
    return ClientAuthFields(jwks, uri, reader.get("require_par", bool, False), profile)
