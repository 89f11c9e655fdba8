"""OAuth errors as one exception hierarchy; app.py renders every one of them in one place."""

from __future__ import annotations

from typing import ClassVar


class OAuthError(Exception):
    """Raise an RFC 6749 §5.2 error; `description` is public, `detail` is only logged."""

    error: ClassVar[str] = "invalid_request"
    status: ClassVar[int] = 400

    def __init__(self, description: str | None = None, *, detail: str | None = None) -> None:
        super().__init__(description or self.error)
        self.description = description
        self.detail = detail

    @property
    def headers(self) -> dict[str, str]:
        """Return extra response headers this error needs."""
        return {}

    def body(self) -> dict[str, str]:
        """Return the JSON body of RFC 6749 §5.2."""
        out = {"error": self.error}
        if self.description:
            out["error_description"] = _description_chars(self.description)
        return out


def _description_chars(text: str) -> str:
    """Keep error_description within %x20-21 / %x23-5B / %x5D-7E (RFC 6749 §5.2)."""
    # Descriptions cite RFC sections with "§"; spell it out rather than break strict clients.
    text = text.replace("§", "section ").replace('"', "'")
    return "".join(c if " " <= c <= "~" and c != "\\" else "?" for c in text)


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed (RFC 6749 §5.2): 401, with a challenge for Basic."""

    error = "invalid_client"
    status = 401

    @property
    def headers(self) -> dict[str, str]:
        # RFC 6749 §5.2: 401 MUST carry WWW-Authenticate matching the scheme the client used;
        # we always offer Basic, the scheme every client library supports.
        return {"WWW-Authenticate": 'Basic realm="jwtauth", charset="UTF-8"'}


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedTokenType(OAuthError):
    error = "unsupported_token_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidTarget(OAuthError):
    """RFC 8707 §2: the requested resource is not one this client may address."""

    error = "invalid_target"


class InvalidDPoPProof(OAuthError):
    """RFC 9449 §5: the DPoP proof is missing where required, malformed, stale, replayed or wrong."""

    error = "invalid_dpop_proof"


class UseDPoPNonce(OAuthError):
    """RFC 9449 §8: send the proof again with the server nonce in the DPoP-Nonce header."""

    error = "use_dpop_nonce"

    def __init__(self, nonce: str, description: str | None = None) -> None:
        super().__init__(description or "a fresh DPoP nonce is required: see the DPoP-Nonce header")
        self.nonce = nonce

    @property
    def headers(self) -> dict[str, str]:
        return {"DPoP-Nonce": self.nonce}


class AccessDenied(OAuthError):
    error = "access_denied"
    status = 403


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class MethodNotAllowed(OAuthError):
    error = "invalid_request"
    status = 405

    def __init__(self, allowed: str, description: str | None = None) -> None:
        super().__init__(description or f"use {allowed}")
        self.allowed = allowed

    @property
    def headers(self) -> dict[str, str]:
        return {"Allow": self.allowed}


class PayloadTooLarge(OAuthError):
    error = "invalid_request"
    status = 413


class UnsupportedMediaType(OAuthError):
    error = "invalid_request"
    status = 415


class SlowDown(OAuthError):
    """Too many failed attempts: 429 with Retry-After (RFC 6749 §4.3.2 brute-force limit)."""

    error = "slow_down"
    status = 429

    def __init__(self, retry_after: int, description: str | None = None) -> None:
        super().__init__(description or "too many failed attempts; try again later")
        self.retry_after = max(1, int(retry_after))

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class TemporarilyUnavailable(OAuthError):
    """The store is unreachable: 503, never 500, so clients retry (RFC 6749 §4.1.2.1)."""

    error = "temporarily_unavailable"
    status = 503

    def __init__(self, description: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(description or "the service is temporarily unavailable; retry shortly")
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ServerError(OAuthError):
    error = "server_error"
    status = 500


class AuthorizationPending(OAuthError):
    """RFC 8628 §3.5: the user has not decided yet; poll again after the interval."""

    error = "authorization_pending"


class PollingTooFast(OAuthError):
    """RFC 8628 §3.5 slow_down: a §5.2 token error (400); the polling interval grew by 5 s."""

    error = "slow_down"


class ExpiredToken(OAuthError):
    """RFC 8628 §3.5: the device code expired; the device must start again."""

    error = "expired_token"


class DeviceAccessDenied(AccessDenied):
    """RFC 8628 §3.5 access_denied at the token endpoint: a §5.2 error, so 400."""

    status = 400


class BearerError(OAuthError):
    """A protected resource's error (RFC 6750 §3): the Bearer challenge names it."""

    error = "invalid_request"

    @property
    def headers(self) -> dict[str, str]:
        challenge = f'Bearer realm="jwtauth", error="{self.error}"'
        if self.description:
            challenge += f', error_description="{self.body()["error_description"]}"'
        return {"WWW-Authenticate": challenge}


class InvalidToken(BearerError):
    """RFC 6750 §3.1: expired, revoked, malformed or foreign access token."""

    error = "invalid_token"
    status = 401


class MissingToken(InvalidToken):
    """RFC 6750 §3.1: no credentials at all: a bare challenge and no error code."""

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="jwtauth"'}

    def body(self) -> dict[str, str]:
        return {}


class InsufficientScope(BearerError):
    """RFC 6750 §3.1: the token lacks the scope the resource needs."""

    error = "insufficient_scope"
    status = 403


class RequestNotSupported(OAuthError):
    """OpenID Connect Core §3.1.2.6: request objects are not supported."""

    error = "request_not_supported"


class RequestUriNotSupported(OAuthError):
    """OpenID Connect Core §3.1.2.6: request_uri is not supported."""

    error = "request_uri_not_supported"


class LoginRequired(OAuthError):
    """OpenID Connect Core §3.1.2.6: prompt=none, and the user must sign in first."""

    error = "login_required"


class ConsentRequired(OAuthError):
    """OpenID Connect Core §3.1.2.6: prompt=none, and the user has not consented yet."""

    error = "consent_required"


