"""Check DPoP proofs (RFC 9449 §4.3), purely: the rules the token endpoint and resource servers share.

A proof is a JWT the client signs for one HTTP request with a key it holds; its public key
travels in the proof's own header. `check_proof` parses and verifies one against the request
as the checking server sees it (method, URL, clock) and returns the key's RFC 7638 thumbprint,
which an access token bound to that key carries as `cnf.jkt`. What it cannot decide alone is
left to the caller: whether the `jti` was seen before (a replay cache) and whether the `nonce`
is one the server issued (`jwtauth.verify.nonce`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import get_default_algorithms
from jwt.utils import base64url_encode

from jwtauth.verify.jwk import _KEY_SHAPES, _PRIVATE_MEMBERS, ALLOWED_ALGORITHMS
from jwtauth.verify.strictjson import decode_segment, header_object, parse_object

__all__ = [
    "DPOP_ALGORITHMS",
    "MAX_PROOF_BYTES",
    "InvalidProof",
    "Proof",
    "UseNonce",
    "access_token_hash",
    "check_proof",
    "jwk_thumbprint",
]

# RFC 9449 §4.2, RFC 8725 §3.1: asymmetric algorithms only; never none, never an HMAC.
DPOP_ALGORITHMS: Final = ALLOWED_ALGORITHMS
PROOF_TYP: Final = "dpop+jwt"
# Everything after the size check costs CPU the sender chooses; an RSA-4096 proof is ~1.7 KB.
MAX_PROOF_BYTES: Final = 4096
_MAX_RSA_BITS: Final = 4096
_MAX_STRING: Final = 512
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]+")
# RFC 7638 §3.2: the required members of each key type, the only ones the thumbprint hashes.
_THUMBPRINT_MEMBERS: Final = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}
# PyJWT's algorithms check the signature (raw ECDSA signatures, PSS parameters, EdDSA); the JWS
# around it is taken apart here, once, since _checked_header vetted every segment already.
_ALGORITHMS: Final = get_default_algorithms()
# A client signs every request with the same key: keep parsed, validated keys (bounded).
_KEY_CACHE_SIZE: Final = 1024
_URI_CACHE_SIZE: Final = 256


class InvalidProof(Exception):
    """Signal that a DPoP proof was refused (`invalid_dpop_proof`); `reason` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UseNonce(InvalidProof):
    """Signal that the proof must carry a fresh server nonce (`use_dpop_nonce`, RFC 9449 §8)."""

    def __init__(self, nonce: str, reason: str = "a fresh DPoP nonce is required") -> None:
        super().__init__(reason)
        self.nonce = nonce


@dataclass(frozen=True)
class Proof:
    """A proof whose signature, type and request binding checked out."""

    jkt: str  # RFC 7638 thumbprint of the proof's key
    jti: str
    iat: float
    nonce: str | None


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """Return the RFC 7638 SHA-256 thumbprint of a public JWK (base64url, no padding)."""
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64url_encode(hashlib.sha256(canonical).digest()).decode("ascii")


def access_token_hash(token: str) -> str:
    """Return the `ath` of an access token: base64url(SHA-256(ASCII token)) (RFC 9449 §4.2)."""
    return base64url_encode(hashlib.sha256(token.encode("ascii")).digest()).decode("ascii")


def check_proof(
    proof: str,
    *,
    htm: str,
    htu: str,
    now: float,
    window: float = 60.0,
    leeway: float = 5.0,
    access_token: str | None = None,
    algorithms: Collection[str] = DPOP_ALGORITHMS,
) -> Proof:
    """Return the checked proof for a request `htm` `htu` received at `now`; raise InvalidProof.

    `window`: how old `iat` may be; `leeway`: how far in the future (clock skew). With
    `access_token` (a resource server), `ath` must be that token's hash (RFC 9449 §4.3 step 11).
    """
    header = _checked_header(proof, algorithms)
    key, jkt = _proof_key(header["jwk"], header["alg"])
    head, body, signature = proof.split(".")
    # RFC 7515 §5.2: the signature covers the header and payload segments exactly as sent.
    if not _ALGORITHMS[header["alg"]].verify(f"{head}.{body}".encode("ascii"), key, _b64decode(signature)):
        raise InvalidProof("DPoP proof signature does not verify")
    claims = _object(_b64decode(body))
    jti, nonce = _string(claims, "jti"), claims.get("nonce")
    # RFC 9449 §4.3 steps 8-9: the proof names this very request.
    if _string(claims, "htm") != htm:
        raise InvalidProof("DPoP proof is for another HTTP method")
    if not _same_uri(_string(claims, "htu"), htu):
        raise InvalidProof("DPoP proof is for another URL")
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int | float) or not math.isfinite(iat):
        raise InvalidProof("DPoP proof has no valid iat")
    # RFC 9449 §4.3 step 11 and §11.1: only recently created proofs, so the replay cache need
    # only remember a jti for window + leeway.
    if iat > now + leeway:
        raise InvalidProof("DPoP proof is issued in the future")
    if iat < now - window:
        raise InvalidProof("DPoP proof is too old")
    if nonce is not None and (not isinstance(nonce, str) or not 0 < len(nonce) <= _MAX_STRING):
        raise InvalidProof("DPoP proof has an invalid nonce")
    if access_token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str) or not hmac.compare_digest(ath, access_token_hash(access_token)):
            raise InvalidProof("DPoP proof is not for this access token")
    return Proof(jkt, jti, float(iat), nonce)


def _checked_header(proof: str, algorithms: Collection[str]) -> Mapping[str, Any]:
    """Parse and vet the proof's JOSE header before any signature work (RFC 9449 §4.3 steps 1-6)."""
    if not isinstance(proof, str) or len(proof) > MAX_PROOF_BYTES:
        raise InvalidProof("DPoP proof is too large")
    segments = proof.split(".")
    if len(segments) != 3 or not all(_B64URL.fullmatch(s) for s in segments):
        raise InvalidProof("malformed DPoP proof")
    header = _decoded_header(segments[0])
    if not isinstance(header.get("typ"), str) or header["typ"].lower() != PROOF_TYP:
        raise InvalidProof("DPoP proof must have typ dpop+jwt")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms or alg.lower() == "none":
        raise InvalidProof("DPoP proof algorithm is not allowed")
    if "crit" in header:  # RFC 7515 §4.1.11: we understand no extension
        raise InvalidProof("DPoP proof has an unsupported critical header")
    if not isinstance(header.get("jwk"), Mapping):
        raise InvalidProof("DPoP proof has no jwk")
    return header


def _proof_key(jwk: Mapping[str, Any], alg: str) -> tuple[Any, str]:
    """Return the proof's public key and its thumbprint; refuse private material, unfit keys."""
    # RFC 9449 §4.3 step 7: the header's jwk MUST NOT contain a private key.
    if _PRIVATE_MEMBERS & jwk.keys():
        raise InvalidProof("DPoP proof jwk must be a public key")
    kty, crv = _KEY_SHAPES[alg]
    if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
        raise InvalidProof("DPoP proof jwk does not fit its algorithm")
    members = _THUMBPRINT_MEMBERS[kty]
    if not all(isinstance(jwk.get(m), str) for m in members):
        raise InvalidProof("DPoP proof jwk is incomplete")
    # Only the members that make the key (RFC 7638 §3.2) build it; the others change nothing.
    return _public_key(alg, tuple((m, jwk[m]) for m in members))


def _decoded_header(segment: str) -> Mapping[str, Any]:
    """Return a proof's header segment parsed, read-only (kept: a client's proofs share one header)."""
    try:
        return header_object(segment)
    except ValueError:
        raise InvalidProof("malformed DPoP proof") from None


@functools.lru_cache(maxsize=_KEY_CACHE_SIZE)
def _public_key(alg: str, members: tuple[tuple[str, str], ...]) -> tuple[Any, str]:
    """Return the validated key a JWK's key members make, and its thumbprint (cached; refusals not)."""
    jwk = dict(members)
    try:
        key = jwt.PyJWK(jwk, algorithm=alg).key
    except (jwt.PyJWTError, ValueError, TypeError):
        raise InvalidProof("DPoP proof jwk is not a valid key") from None
    if isinstance(key, rsa.RSAPublicKey) and not 2048 <= key.key_size <= _MAX_RSA_BITS:
        raise InvalidProof("DPoP proof RSA key must have 2048 to 4096 bits")
    return key, jwk_thumbprint(jwk)


def _same_uri(claimed: str, expected: str) -> bool:
    """Compare `htu` with the request URI, ignoring query and fragment (RFC 9449 §4.3 step 9).

    Syntax-based normalization (RFC 3986 §6.2.2-6.2.3): scheme and host case, default ports,
    an empty path as "/". Nothing looser: the path must match exactly.
    """
    ours = _normalized(expected)
    theirs = ours if claimed == expected else _normalized(claimed)
    if ours is None or theirs is None or theirs[1]:
        return False
    return ours[0] == theirs[0]


@functools.lru_cache(maxsize=_URI_CACHE_SIZE)
def _normalized(uri: str) -> tuple[tuple[str, str | None, int | None, str], bool] | None:
    """Return what `_same_uri` compares of `uri` and whether it names a user; None if unparseable.

    Cached: a server checks every proof against its own URL, and a client's proofs name the same one.
    """
    try:
        parts = urlsplit(uri)
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
    except ValueError:
        return None
    named = parts.username is not None or parts.password is not None
    return (parts.scheme.lower(), parts.hostname, port, parts.path or "/"), named


def _string(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_STRING:
        raise InvalidProof(f"DPoP proof has no valid {name}")
    return value


def _b64decode(segment: str) -> bytes:
    try:
        return decode_segment(segment)
    except ValueError:
        raise InvalidProof("malformed DPoP proof") from None


def _object(data: bytes) -> dict[str, Any]:
    try:
        return parse_object(data)
    except ValueError:
        raise InvalidProof("malformed DPoP proof") from None
