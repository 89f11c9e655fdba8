"""private_key_jwt for tests: a client's key pair, its registered JWK Set, and the assertions it signs."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import get_default_algorithms

from jwtauth.accounts.assertions import ASSERTION_TYPE
from jwtauth.config.clients import Client, parse_client
from jwtauth.config.reader import TableReader
from tests.helpers import ISSUER

_KEYS = {
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "PS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
}


class ClientKey:
    """A client's signing key; `jwk` is its public half as registered (kid and alg included)."""

    def __init__(self, alg: str = "ES256", kid: str | None = None) -> None:
        self.alg, self.kid = alg, kid or secrets.token_urlsafe(6)
        self.key: Any = _KEYS[alg]()
        public = get_default_algorithms()[alg].to_jwk(self.key.public_key(), as_dict=True)
        self.jwk: dict[str, Any] = {**public, "kid": self.kid, "alg": alg, "use": "sig"}

    def jwks(self, *others: ClientKey) -> dict[str, Any]:
        return {"keys": [self.jwk, *(o.jwk for o in others)]}

    def assertion(
        self,
        client_id: str,
        *,
        now: float,
        aud: Any = ISSUER,
        lifetime: float = 60,
        header: Mapping[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """Sign an assertion for `client_id` at `now`; claims and header members set to None are left out."""
        payload: dict[str, Any] = {
            "iss": client_id,
            "sub": client_id,
            "aud": aud,
            "exp": int(now + lifetime),
            "iat": int(now),
            "jti": secrets.token_urlsafe(16),
            **claims,
        }
        payload = {k: v for k, v in payload.items() if v is not None}
        headers = {k: v for k, v in {"kid": self.kid, **(header or {})}.items() if v is not None}
        return jwt.encode(payload, self.key, algorithm=self.alg, headers=headers)


def params(assertion: str, **more: str) -> dict[str, str]:
    """Return the body parameters of private_key_jwt (RFC 7523 §2.2)."""
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion, **more}


def key_client(client_id: str, jwks: Mapping[str, Any] | None = None, **table: Any) -> Client:
    """Return a client parsed from a [[clients]] table, as `jwtauth serve` would read it."""
    fields: dict[str, Any] = {
        "id": client_id,
        "grant_types": ["client_credentials", "authorization_code", "refresh_token"],
        "redirect_uris": ["https://rp.example.com/cb"],
        "scopes": ["read", "write"],
        "default_scope": "read",
        **({"jwks": dict(jwks)} if jwks is not None else {}),
        **table,
    }
    return parse_client(TableReader("<test>", "clients[0]", fields))
