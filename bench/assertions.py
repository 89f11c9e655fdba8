"""The private_key_jwt scenario of make bench: a key client in the bench config, assertions signed ahead.

Every assertion is single use (its jti is spent in Redis), so wrk cannot repeat one request: the
assertions are signed before the run, one a line, and bench/wrk.lua's `assertion` mode sends each
once in a client_credentials request, as the `code` mode does with codes.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

CLIENT_ID = "bench-jwt"
KID = "bench-1"


def add_key_client(config: Path, work: Path) -> Path:
    """Append a private_key_jwt client (a fresh ES256 key) to the bench config; return the key file."""
    key = ec.generate_private_key(ec.SECP256R1())
    public: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    public |= {"kid": KID, "alg": "ES256", "use": "sig"}
    members = ", ".join(f'{name} = "{value}"' for name, value in public.items())
    with config.open("a") as handle:
        handle.write(
            f'\n[[clients]]\nid = "{CLIENT_ID}"\ngrant_types = ["client_credentials"]\n'
            f'scopes = ["read"]\ndefault_scope = "read"\njwks = {{ keys = [{{ {members} }}] }}\n'
        )
    path = work / "bench-jwt.pem"
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    return path


def sign_assertions(key_file: Path, issuer: str, count: int, path: Path) -> Path:
    """Write `count` assertions for CLIENT_ID, valid 5 minutes from now (RFC 7523 §3), one a line."""
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    now = int(time.time())
    claims = {"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": issuer, "iat": now, "exp": now + 300}
    lines = (
        jwt.encode({**claims, "jti": uuid.uuid4().hex}, key, algorithm="ES256", headers={"kid": KID}) + "\n"  # type: ignore[arg-type]
        for _ in range(count)
    )
    path.write_text("".join(lines))
    return path
