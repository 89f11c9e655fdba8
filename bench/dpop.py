"""DPoP proofs for make bench: one fresh proof per token request, signed before the run.

Each proof is what a DPoP client sends with client_credentials (RFC 9449 §4.2): a new `jti`,
`htm` POST, `htu` the token endpoint, `iat` now, signed with the client's ES256 key whose public
JWK rides in the header. The token endpoint accepts a proof once, so wrk takes one line of the
file per request (bench/wrk.lua, BENCH_MODE=dpop); signing them beforehand keeps the client's
signatures off the cores the server is measured on.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm


def write_proofs(htu: str, count: int, path: Path) -> Path:
    """Sign `count` proofs for POST `htu` with one new ES256 key; write them one a line."""
    key = ec.generate_private_key(ec.SECP256R1())
    headers = {"typ": "dpop+jwt", "jwk": ECAlgorithm.to_jwk(key.public_key(), as_dict=True)}
    iat = int(time.time())
    with path.open("w") as out:
        for _ in range(count):
            claims = {"jti": secrets.token_urlsafe(12), "htm": "POST", "htu": htu, "iat": iat}
            out.write(jwt.encode(claims, key, algorithm="ES256", headers=headers) + "\n")
    return path
