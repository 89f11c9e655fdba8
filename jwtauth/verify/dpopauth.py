"""Guard Falcon resources with DPoP-bound tokens (RFC 9449 §7), bearer tokens optionally beside them."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import falcon

from jwtauth.verify.dpop import DPOP_ALGORITHMS, InvalidProof, Proof, UseNonce, check_proof
from jwtauth.verify.errors import InvalidToken, VerifierUnavailable
from jwtauth.verify.nonce import NonceSource
from jwtauth.verify.replay import MemoryReplayCache, ReplayCache, replay_key
from jwtauth.verify.verifier import Verifier, token_scopes

__all__ = ["DPoPAuth", "DPoPOptions"]

# RFC 9449 §7.1 and RFC 6750 §2.1: the token68 after the scheme name.
_CREDENTIALS: Final = re.compile(r"([A-Za-z]+) +([A-Za-z0-9\-._~+/]+=*)")
_UNQUOTABLE: Final = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


class DPoPAuth:
    """Require a valid DPoP-bound token (or, if allowed, a bearer token) and scopes; a ``falcon.before`` hook.

    ``Authorization: DPoP <token>`` with one ``DPoP`` proof header: the proof must be signed
    by the key the token is bound to (``cnf.jkt``), name this request's method and URL
    (``base_url`` + path: the URL clients use, e.g. behind a proxy; the request's own
    scheme and host without it), carry the token's hash (``ath``), be recent, unused
    (``replay``: per process by default; share a ``RedisReplayCache`` between workers) and,
    with ``nonces``, carry a fresh server nonce. ``Authorization: Bearer`` is accepted when
    ``allow_bearer`` is true, but never for a bound token (RFC 9449 §7.2: a downgrade).
    On success the claims are on ``req.context.claims`` and the proof on ``req.context.dpop``.
    """

    def __init__(
        self,
        verifier: Verifier,
        *,
        required_scopes: Iterable[str] = (),
        base_url: str | None = None,
        allow_bearer: bool = True,
        replay: ReplayCache | None = None,
        nonces: NonceSource | None = None,
        window: float = 60.0,
        leeway: float = 5.0,
        realm: str = "jwtauth",
        clock: Callable[[], float] = time.time,
        resource_metadata: str | None = None,
    ) -> None:
        """Configure the verifier, scopes, external URL, replay cache, nonces and time limits.

        ``resource_metadata``: the RFC 9728 metadata URL every challenge names (§5.1).
        """
        if not realm or _UNQUOTABLE.search(realm):
            raise ValueError("realm must be printable ASCII without quotes or backslashes")
        if resource_metadata is not None and _UNQUOTABLE.search(resource_metadata):
            raise ValueError("resource_metadata must be a URL of printable ASCII without quotes")
        if window <= 0 or leeway < 0:
            raise ValueError("need window > 0 and leeway >= 0")
        self._verifier, self._required = verifier, frozenset(required_scopes)
        self._base = base_url.rstrip("/") if base_url else None
        self._allow_bearer, self._nonces, self._realm = allow_bearer, nonces, realm
        self._replay = replay if replay is not None else MemoryReplayCache()
        self._window, self._leeway, self._clock = window, leeway, clock
        self._metadata = f', resource_metadata="{resource_metadata}"' if resource_metadata else ""

    def __call__(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict[str, Any]
    ) -> None:
        """Authenticate ``req`` before the responder runs."""
        req.context.claims = self.authenticate(req)

    def authenticate(self, req: falcon.Request) -> dict[str, Any]:
        """Return the verified claims of ``req``'s token, or raise an HTTP error with challenges."""
        match = _CREDENTIALS.fullmatch(req.get_header("Authorization") or "")
        scheme = match.group(1).lower() if match else ""
        try:
            if scheme == "dpop" and match:
                claims = self._dpop(req, match.group(2))
            elif scheme == "bearer" and match and self._allow_bearer:
                claims = self._verifier.verify(match.group(2))
            else:  # RFC 6750 §3.1, RFC 9449 §7.1: no usable credentials, a bare challenge
                raise falcon.HTTPUnauthorized(challenges=self._challenges())
        except UseNonce as exc:
            raise falcon.HTTPUnauthorized(
                description=exc.reason,
                challenges=self._challenges("use_dpop_nonce", exc.reason),
                headers={"DPoP-Nonce": exc.nonce},
            ) from None
        except InvalidProof as exc:
            raise falcon.HTTPUnauthorized(
                description=exc.reason, challenges=self._challenges("invalid_dpop_proof", exc.reason)
            ) from None
        except VerifierUnavailable as exc:
            retry = math.ceil(self._verifier.refetch_interval)
            raise falcon.HTTPServiceUnavailable(description=exc.reason, retry_after=retry) from None
        except InvalidToken as exc:
            challenges = self._challenges("invalid_token", exc.reason, scheme=scheme)
            raise falcon.HTTPUnauthorized(description=exc.reason, challenges=challenges) from None
        if not self._required <= token_scopes(claims):  # RFC 6750 §3.1
            scope = " ".join(sorted(self._required))
            challenge = self._challenges(
                "insufficient_scope", "insufficient scope", scheme=scheme, scope=scope
            )
            raise falcon.HTTPForbidden(
                description="insufficient scope", headers={"WWW-Authenticate": ", ".join(challenge)}
            )
        return claims

    def _dpop(self, req: falcon.Request, token: str) -> dict[str, Any]:
        """Check the proof, its nonce, the bound token, then spend the proof (RFC 9449 §7.1)."""
        proof = self._proof(req, token)
        if self._nonces is not None and not self._nonces.valid(proof.nonce):
            raise UseNonce(self._nonces.current())
        claims = self._verifier.verify(token, dpop_jkt=proof.jkt)
        # Last, so a request refused for any other reason does not use the proof up.
        if not self._replay.first_use(replay_key(proof.jkt, proof.jti), self._window + self._leeway):
            raise InvalidProof("DPoP proof was already used")
        req.context.dpop = proof
        return claims

    def _proof(self, req: falcon.Request, token: str) -> Proof:
        """Return the request's one DPoP proof, checked against the request and the token."""
        value = req.get_header("DPoP")
        if not value:
            raise InvalidProof("a DPoP proof is required")
        # A server joins repeated headers with commas, which a compact JWS never contains.
        if "," in value:
            raise InvalidProof("exactly one DPoP header is allowed")
        htu = (self._base or req.prefix) + req.path
        return check_proof(
            value.strip(), htm=req.method, htu=htu, now=self._clock(),
            window=self._window, leeway=self._leeway, access_token=token,
        )

    def _challenges(
        self, error: str = "", description: str = "", *, scheme: str = "dpop", scope: str = ""
    ) -> list[str]:
        """Return the DPoP challenge (RFC 9449 §7.1) and, where allowed, the Bearer one.

        The error goes on the challenge of the scheme the client used; every challenge names
        the metadata URL, whichever scheme the client understands (RFC 9728 §5.1).
        """
        dpop = f'DPoP algs="{" ".join(sorted(DPOP_ALGORITHMS))}"{self._metadata}'
        bearer = f'Bearer realm="{self._realm}"{self._metadata}'
        params = ""
        if error:
            params = f', error="{error}", error_description="{_UNQUOTABLE.sub("?", description)}"'
        params += f', scope="{scope}"' if scope else ""
        if scheme == "bearer":
            return [bearer + params, dpop]
        return [dpop + params, *([bearer] if self._allow_bearer else [])]


@dataclass(frozen=True)
class DPoPOptions:
    """How a protected resource accepts DPoP (RFC 9449 §7): ``DPoPAuth``'s settings, for middleware.

    ``allow_bearer=False`` refuses bearer tokens altogether; the RFC 9728 metadata then says
    ``dpop_bound_access_tokens_required``. The other fields are ``DPoPAuth``'s arguments.
    """

    allow_bearer: bool = True
    base_url: str | None = None
    replay: ReplayCache | None = None
    nonces: NonceSource | None = None
    window: float = 60.0
    leeway: float = 5.0
    clock: Callable[[], float] = time.time

    def auth(
        self, verifier: Verifier, *, required_scopes: Iterable[str], realm: str, resource_metadata: str
    ) -> DPoPAuth:
        """Return the ``DPoPAuth`` that enforces these options: one set of rules for every door."""
        return DPoPAuth(
            verifier, required_scopes=required_scopes, base_url=self.base_url,
            allow_bearer=self.allow_bearer, replay=self.replay, nonces=self.nonces,
            window=self.window, leeway=self.leeway, realm=realm, clock=self.clock,
            resource_metadata=resource_metadata,
        )

    def metadata(self) -> dict[str, Any]:
        """Return the RFC 9728 §2 members that describe this DPoP support."""
        return {
            "dpop_signing_alg_values_supported": sorted(DPOP_ALGORITHMS),
            "dpop_bound_access_tokens_required": not self.allow_bearer,
        }
