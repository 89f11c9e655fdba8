"""DPoP at the token endpoint (RFC 9449 §5): one proof per request, fresh, unused, maybe nonced.

The proof rules themselves are `jwtauth.verify.dpop.check_proof`, the very code resource
servers run; this adds what only the authorization server decides:

- `htu` is the token endpoint built from the configured issuer, never from the request's Host.
- Nonces (`[dpop] require_nonce`) are stateless: HMAC-SHA256 of a time slot. Their secret is
  derived (HKDF, its own label) from the pepper in keys/ (jwtauth.store.pepper), so every
  worker on every host that mounts the same keys/ computes the same nonces with nothing new to
  configure or leak, and a signing-key rotation no longer changes them.
- Replay: every accepted proof's jti is set once in Redis for the proof window plus leeway.
  client_credentials needs no Redis, so when Redis is down its DPoP requests fall back to a
  stateless check (SECURITY.md): the proof must carry a valid server nonce and be at most
  STATELESS_WINDOW seconds old. Every other grant answers 503 as it would anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from jwtauth.config.clients import Client
from jwtauth.config.settings import Settings
from jwtauth.errors import InvalidDPoPProof, InvalidRequest, UseDPoPNonce
from jwtauth.store.connection import STORE_ERRORS, unavailable
from jwtauth.store.pepper import Pepper
from jwtauth.verify.dpop import InvalidProof, Proof, check_proof
from jwtauth.verify.nonce import NonceSource
from jwtauth.verify.replay import ReplayCache, replay_key

LEEWAY = 5  # seconds a proof's iat may be ahead of our clock
STATELESS_WINDOW = 10  # how old a proof may be while Redis is down (nonce required then)
NONCE_LABEL = "dpop nonce"


def key_nonces(pepper: Pepper, settings: Settings, clock: Callable[[], float]) -> NonceSource:
    """Return the server's nonce source: one secret derived from the pepper in keys/."""
    secret = [pepper.derive(NONCE_LABEL)]
    return NonceSource(lambda: secret, lifetime=settings.dpop_nonce_lifetime, clock=clock)


class TokenEndpointDPoP:
    """Check the DPoP proof of a token request and return the key it binds the tokens to."""

    def __init__(
        self,
        settings: Settings,
        *,
        htu: str,
        nonces: NonceSource,
        markers: ReplayCache,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.htu, self.nonces, self.markers, self.clock = htu, nonces, markers, clock
        self.window, self.require_nonce = settings.dpop_proof_window, settings.dpop_require_nonce

    def check(self, header: str | None, *, client: Client, stateless: bool) -> str | None:
        """Return the thumbprint of the request's proof, None without one, or raise.

        `stateless`: the grant needs no Redis (client_credentials), so a store outage falls
        back to nonces instead of answering 503.
        """
        if header is None:
            if client.require_dpop:  # RFC 9449 §5.2: dpop_bound_access_tokens
                raise InvalidRequest("this client must send a DPoP proof (RFC 9449)")
            return None
        # RFC 9449 §4.3 step 1: exactly one DPoP header; a server joins repeats with commas.
        if "," in header:
            raise InvalidDPoPProof("exactly one DPoP header is allowed")
        try:
            proof = check_proof(
                header.strip(), htm="POST", htu=self.htu, now=self.clock(), window=self.window, leeway=LEEWAY
            )
        except InvalidProof as exc:
            raise InvalidDPoPProof(exc.reason) from None
        if self.require_nonce and not self.nonces.valid(proof.nonce):
            raise UseDPoPNonce(self.nonces.current())
        self._spend(proof, stateless=stateless)
        return proof.jkt

    def nonce_header(self) -> str | None:
        """Return the nonce to send with a success (RFC 9449 §8.2) when nonces are required."""
        return self.nonces.current() if self.require_nonce else None

    def _spend(self, proof: Proof, *, stateless: bool) -> None:
        """Accept the proof's jti once (RFC 9449 §11.1), or check it statelessly if allowed."""
        try:
            fresh = self.markers.first_use(replay_key(proof.jkt, proof.jti), self.window + LEEWAY)
        except STORE_ERRORS as exc:
            if not (stateless and unavailable(exc)):
                raise
            self._without_store(proof)
            return
        if not fresh:
            raise InvalidDPoPProof("the DPoP proof was already used")

    def _without_store(self, proof: Proof) -> None:
        """Accept a proof while the replay set is unreachable: nonce plus a short window."""
        if not self.nonces.valid(proof.nonce):
            raise UseDPoPNonce(self.nonces.current())
        if proof.iat < self.clock() - STATELESS_WINDOW:
            raise InvalidDPoPProof("the DPoP proof is too old")
