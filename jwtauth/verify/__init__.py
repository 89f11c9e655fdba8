"""Verify jwtauth access tokens offline, for resource servers.

A resource server needs only this package, PyJWT and cryptography, plus Falcon for the
framework adapters (BearerAuth, DPoPAuth, the WSGI/ASGI wrappers), which are imported on first
use: no server configuration, no Redis.

    verifier = Verifier(issuer="https://auth.example.com", audience="https://api.example.com")
    claims = verifier.verify(token)          # or raises InvalidToken

Errors: every rejection is an ``InvalidToken`` whose ``reason`` is a short public
string. When the signing keys cannot be fetched at all, the subclass
``VerifierUnavailable`` is raised instead. It subclasses ``InvalidToken`` so that a
caller who catches only ``InvalidToken`` still fails closed (the token is refused);
a caller who wants to tell "bad token" (401) from "cannot check right now" (503)
catches ``VerifierUnavailable`` first, as ``BearerAuth`` does.

Audience: ``audience`` is a required keyword. Skipping the audience check needs two
explicit choices, ``audience=None`` *and* ``verify_audience=False``; anything else
that would leave the audience unchecked is a ``ValueError`` at construction. Even
then the token must carry an ``aud`` claim (RFC 9068 §2.2).

DPoP (RFC 9449): ``DPoPAuth`` guards Falcon resources with sender-constrained tokens
(``Authorization: DPoP`` plus a ``DPoP`` proof) and refuses a bound token sent as Bearer;
``Verifier.verify`` itself refuses a bound token unless given the checked proof's key.
``ProtectedResourceMiddleware``, ``BearerWSGI`` and ``BearerASGI`` take ``dpop=DPoPOptions(...)``
to run the same checks for a whole app and advertise them in the RFC 9728 metadata.

Revocation: ``Verifier(..., revocations=True)`` follows a jwtauth issuer's signed revocation
document (``jwtauth.verify.revocations``) and refuses revoked families' and logged-out subjects'
tokens within its max-age; without a current document it refuses every token (fails closed).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from jwtauth.verify.dpop import InvalidProof, Proof, UseNonce, check_proof
from jwtauth.verify.errors import InvalidToken, NotModified, VerifierUnavailable
from jwtauth.verify.fetch import Fetch, urllib_fetch
from jwtauth.verify.jwk import ALLOWED_ALGORITHMS
from jwtauth.verify.jwks import Clock
from jwtauth.verify.nonce import NonceSource
from jwtauth.verify.replay import MemoryReplayCache, RedisReplayCache, ReplayCache
from jwtauth.verify.resource import ProtectedResource
from jwtauth.verify.verifier import Verifier, token_scopes

if TYPE_CHECKING:
    from jwtauth.verify.dpopauth import DPoPAuth, DPoPOptions
    from jwtauth.verify.hooks import BearerAuth, RequireBearer
    from jwtauth.verify.middleware import BearerASGI, BearerWSGI, ProtectedResourceMiddleware

# The framework adapters need Falcon (the `falcon` extra); they are imported on first use, so a
# resource server without Falcon imports this package with PyJWT and cryptography alone.
_FALCON_ADAPTERS = {
    "BearerAuth": "hooks",
    "RequireBearer": "hooks",
    "DPoPAuth": "dpopauth",
    "DPoPOptions": "dpopauth",
    "BearerASGI": "middleware",
    "BearerWSGI": "middleware",
    "ProtectedResourceMiddleware": "middleware",
}


def __getattr__(name: str) -> Any:
    """Import a Falcon adapter when it is first asked for (PEP 562)."""
    module = _FALCON_ADAPTERS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)

__all__ = [
    "ALLOWED_ALGORITHMS",
    "BearerASGI",
    "BearerAuth",
    "BearerWSGI",
    "Clock",
    "DPoPAuth",
    "DPoPOptions",
    "Fetch",
    "InvalidProof",
    "InvalidToken",
    "MemoryReplayCache",
    "NonceSource",
    "NotModified",
    "Proof",
    "ProtectedResource",
    "ProtectedResourceMiddleware",
    "RedisReplayCache",
    "ReplayCache",
    "RequireBearer",
    "UseNonce",
    "Verifier",
    "VerifierUnavailable",
    "check_proof",
    "token_scopes",
    "urllib_fetch",
]
