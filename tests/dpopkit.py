"""DPoP proofs for tests: a client key and the proofs it signs (RFC 9449 §4.2), bent on request."""

from __future__ import annotations

import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import get_default_algorithms

from jwtauth.verify.dpop import access_token_hash, jwk_thumbprint
from tests.helpers import ISSUER

TOKEN_URL = ISSUER + "/api/v1/tokens"


class DPoPKey:
    """A client's DPoP key pair (ES256 unless given another key and alg)."""

    def __init__(self, key: Any = None, alg: str = "ES256") -> None:
        self.key = key if key is not None else ec.generate_private_key(ec.SECP256R1())
        self.alg = alg
        self.jwk: dict[str, Any] = get_default_algorithms()[alg].to_jwk(self.key.public_key(), as_dict=True)
        self.jkt = jwk_thumbprint(self.jwk)

    def proof(
        self,
        *,
        htm: str = "POST",
        htu: str = TOKEN_URL,
        iat: Any = None,
        token: str | None = None,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """Sign a proof for one request; `header` and `claims` add or override members."""
        payload: dict[str, Any] = {
            "jti": secrets.token_urlsafe(12),
            "htm": htm,
            "htu": htu,
            "iat": iat if isinstance(iat, str) else int(time.time() if iat is None else iat),
        }
        if token is not None:
            payload["ath"] = access_token_hash(token)
        payload.update(claims)
        headers = {"typ": "dpop+jwt", "jwk": self.jwk, **(header or {})}
        return jwt.encode(payload, self.key, algorithm=self.alg, headers=headers)
