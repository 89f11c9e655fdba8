"""Choose the keys of a JWK Set we would verify with, each pinned to one algorithm."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from jwtauth.verify.strictjson import parse_object

__all__ = ["ALLOWED_ALGORITHMS", "usable_keys"]

# Named, not __name__: operators (and jwtauth's admin CLI) tune the verifier by this name.
log = logging.getLogger("jwtauth.verify")

# RFC 8725 §3.1: an explicit allow-list; asymmetric only, so a public key can never
# be misused as an HMAC secret.
ALLOWED_ALGORITHMS: Final = frozenset({"ES256", "RS256", "PS256", "EdDSA"})
# What each algorithm demands of the JWK that carries it: (kty, crv).
_KEY_SHAPES: Final[Mapping[str, tuple[str, str | None]]] = {
    "ES256": ("EC", "P-256"),
    "RS256": ("RSA", None),
    "PS256": ("RSA", None),
    "EdDSA": ("OKP", "Ed25519"),
}
# RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2: members only a private or symmetric key has.
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_MIN_RSA_BITS: Final = 2048  # RFC 7518 §3.3


def usable_keys(body: bytes) -> dict[str, jwt.PyJWK]:
    """Parse a JWK Set, keeping only public signature keys we would accept."""
    entries = parse_object(body).get("keys")
    if not isinstance(entries, list):
        raise ValueError("JWK Set has no keys array")
    keys: dict[str, jwt.PyJWK] = {}
    ambiguous: set[str] = set()
    for entry in entries:
        key = _usable_key(entry)
        if key is None or key.key_id is None:
            continue
        # RFC 7517 §4.5: kids should be distinct; if not, we cannot tell which one is meant.
        if key.key_id in keys or key.key_id in ambiguous:
            keys.pop(key.key_id, None)
            ambiguous.add(key.key_id)
            continue
        keys[key.key_id] = key
    return keys


def _usable_key(entry: object) -> jwt.PyJWK | None:
    """Return ``entry`` as a verification key, or None if it must not be used."""
    if not isinstance(entry, dict):
        return None
    kid = entry.get("kid")
    if not isinstance(kid, str) or not kid:
        return None
    # A published private or symmetric key is a leak, not a key: never trust it.
    if _PRIVATE_MEMBERS & entry.keys():
        log.warning("ignoring JWK %r: it carries private or symmetric key material", kid)
        return None
    # RFC 7517 §4.2-4.3: honour declared use and key_ops.
    if entry.get("use", "sig") != "sig":
        return None
    key_ops = entry.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    alg = entry["alg"] if "alg" in entry else _implied_alg(entry)
    if alg not in ALLOWED_ALGORITHMS:
        return None
    kty, crv = _KEY_SHAPES[alg]
    if entry.get("kty") != kty or (crv is not None and entry.get("crv") != crv):
        return None
    try:
        key = jwt.PyJWK(entry, algorithm=alg)
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    if isinstance(key.key, rsa.RSAPublicKey) and key.key.key_size < _MIN_RSA_BITS:
        return None
    return key


def _implied_alg(entry: Mapping[str, Any]) -> str | None:
    """Return the algorithm a JWK without ``alg`` is used with, if there is one."""
    kty, crv = entry.get("kty"), entry.get("crv")
    if kty == "EC" and crv == "P-256":
        return "ES256"
    if kty == "RSA":
        return "RS256"  # PS256 keys must say so: RSA keys default to PKCS#1 v1.5
    if kty == "OKP" and crv == "Ed25519":
        return "EdDSA"
    return None
