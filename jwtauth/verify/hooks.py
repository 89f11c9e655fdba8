"""Guard Falcon resources with bearer tokens (RFC 6750): a ``falcon.before`` hook and a middleware."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable
from typing import Any, Final

import falcon

from jwtauth.verify.errors import InvalidToken, VerifierUnavailable
from jwtauth.verify.verifier import Verifier, token_scopes

__all__ = ["BearerAuth", "RequireBearer"]

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_BEARER: Final = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*)")
# RFC 6750 §3: error_description and scope exclude '"' and '\'.
_UNQUOTABLE: Final = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


class BearerAuth:
    """Require a valid bearer token (RFC 6750 §2.1) and scopes; a ``falcon.before`` hook.

    On success the claims are on ``req.context.claims``. A request without bearer
    credentials gets 401 with a bare challenge (RFC 6750 §3.1), an invalid token 401
    ``invalid_token``, missing scopes 403 ``insufficient_scope``, a malformed header
    400 ``invalid_request``, and unreachable signing keys 503 with Retry-After.
    Verification may fetch keys over the network: for WSGI apps.
    """

    def __init__(
        self,
        verifier: Verifier,
        *,
        required_scopes: Iterable[str] = (),
        realm: str = "jwtauth",
        resource_metadata: str | None = None,
    ) -> None:
        """Configure the verifier, scopes, realm and the RFC 9728 metadata URL of challenges."""
        self._verifier = verifier
        self._required = frozenset(required_scopes)
        if not realm or _UNQUOTABLE.search(realm):
            raise ValueError("realm must be printable ASCII without quotes or backslashes")
        if resource_metadata is not None and _UNQUOTABLE.search(resource_metadata):
            raise ValueError("resource_metadata must be a URL of printable ASCII without quotes")
        self._realm = realm
        # RFC 9728 §5.1: every challenge names the protected-resource metadata URL.
        self._extra = {"resource_metadata": resource_metadata} if resource_metadata else {}

    def __call__(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict[str, Any]
    ) -> None:
        """Authenticate ``req`` before the responder runs."""
        req.context.claims = self.authenticate(req)

    def authenticate(self, req: falcon.Request) -> dict[str, Any]:
        """Return the verified claims of ``req``'s bearer token, or raise an HTTP error."""
        token = self._bearer_token(req)
        try:
            claims = self._verifier.verify(token)
        except VerifierUnavailable as exc:
            raise falcon.HTTPServiceUnavailable(
                description=exc.reason,
                retry_after=math.ceil(self._verifier.refetch_interval),
            ) from None
        except InvalidToken as exc:
            raise falcon.HTTPUnauthorized(
                description=exc.reason,
                challenges=[self._challenge(error="invalid_token", error_description=exc.reason)],
            ) from None
        # RFC 6750 §3.1: the token is fine but does not grant enough.
        if not self._required <= token_scopes(claims):
            scope = " ".join(sorted(self._required))
            raise falcon.HTTPForbidden(
                description="insufficient scope",
                headers={
                    "WWW-Authenticate": self._challenge(error="insufficient_scope", scope=scope)
                },
            )
        return claims

    def _bearer_token(self, req: falcon.Request) -> str:
        """Return the token from ``Authorization: Bearer``, or raise 400/401."""
        value = req.get_header("Authorization")
        scheme = value.split(" ", 1)[0] if value else ""
        # RFC 6750 §3.1: no bearer credentials at all → a challenge without error codes.
        if scheme.lower() != "bearer":
            raise falcon.HTTPUnauthorized(challenges=[self._challenge()])
        match = _BEARER.fullmatch(value or "")
        if match is None:
            raise falcon.HTTPBadRequest(
                description="malformed Authorization header",
                headers={
                    "WWW-Authenticate": self._challenge(
                        error="invalid_request",
                        error_description="malformed Authorization header",
                    )
                },
            )
        return match.group(1)

    def _challenge(self, **params: str) -> str:
        """Build a Bearer challenge (RFC 6750 §3) with quoted, sanitised parameters."""
        params = {**params, **self._extra}
        quoted = [f'{name}="{_UNQUOTABLE.sub("?", value)}"' for name, value in params.items()]
        return ", ".join([f'Bearer realm="{self._realm}"', *quoted])


class RequireBearer:
    """Require a valid bearer token on every request; Falcon middleware.

    Puts the claims on ``req.context.claims``. Paths in ``exempt_paths`` (exact
    matches, e.g. ``/healthz``) pass without a token. Per-resource scopes are
    better expressed with ``falcon.before(BearerAuth(...))``.
    """

    def __init__(
        self,
        verifier: Verifier,
        *,
        required_scopes: Iterable[str] = (),
        realm: str = "jwtauth",
        exempt_paths: Collection[str] = (),
        resource_metadata: str | None = None,
    ) -> None:
        """Configure the verifier, scopes, realm, exempt paths and RFC 9728 metadata URL."""
        self._auth = BearerAuth(
            verifier, required_scopes=required_scopes, realm=realm, resource_metadata=resource_metadata
        )
        self._exempt = frozenset(exempt_paths)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Authenticate ``req`` before routing, so unknown paths leak nothing."""
        if req.path in self._exempt:
            return
        req.context.claims = self._auth.authenticate(req)
