"""Validate authorization requests (RFC 6749 §4.1.1, §4.2.1) and build their redirect responses.

The order is the one RFC 6749 §4.1.2.1 demands: first the client and the redirect URI, whose
errors are shown to the user and never redirected (an open redirector otherwise, RFC 9700 §4.11);
only then everything else, whose errors go back to the client's redirect URI.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from jwtauth.accounts.client_documents import DocumentRefused
from jwtauth.accounts.clients import ClientRegistry
from jwtauth.config.clients import Client
from jwtauth.config.settings import Settings
from jwtauth.errors import (
    InvalidRequest,
    OAuthError,
    RequestNotSupported,
    RequestUriNotSupported,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from jwtauth.oauth import pkce, redirects
from jwtauth.oauth.scopes import requested_audience, requested_scope
from jwtauth.oidc import responses
from jwtauth.oidc.prompt import Interaction, interaction

# The parameters an authorization request carries from the page to its POST; anything else is
# ignored (RFC 6749 §3.1: unrecognized parameters MUST be ignored).
PARAMS = (
    "response_type",
    "response_mode",  # OAuth 2.0 Multiple Response Types §2.1, Form Post Response Mode
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "resource",
    "dpop_jkt",
    "nonce",  # OpenID Connect Core §3.1.2.1, echoed in the id_token
    "prompt",  # Core §3.1.2.1: sign-in and consent behaviour (jwtauth.oidc.prompt)
    "max_age",
    "login_hint",
    "id_token_hint",
)
_JKT = re.compile(r"[A-Za-z0-9_-]{43}")
MAX_NONCE = 512


class UntrustedRedirect(Exception):
    """No known client or no registered redirect URI: show an error page, never redirect."""


@dataclass(frozen=True)
class Target:
    """Where the responses to one authorization request go."""

    client: Client
    redirect_uri: str
    sent_redirect_uri: str | None
    state: str | None
    mode: str  # query, fragment or form_post (jwtauth.oidc.responses)

    @property
    def fragment(self) -> bool:
        """Tell whether responses travel in the redirect URI's fragment."""
        return self.mode == responses.FRAGMENT


@dataclass(frozen=True)
class AuthorizationRequest:
    """A fully validated authorization request."""

    target: Target
    response_type: str  # as sent; `words` is what it means
    scope: tuple[str, ...]
    audience: str
    code_challenge: str | None
    params: dict[str, str]
    dpop_jkt: str | None = None
    nonce: str | None = None
    interaction: Interaction = field(default_factory=Interaction)
    words: frozenset[str] = frozenset({responses.CODE})


def identify(clients: ClientRegistry, params: Mapping[str, str]) -> Target:
    """Return the client and the redirect URI, or raise UntrustedRedirect."""
    try:
        client = clients.find(params.get("client_id"))
    except DocumentRefused as exc:
        raise UntrustedRedirect(f"The application's metadata document cannot be used: {exc}.") from None
    if client is None:
        raise UntrustedRedirect("The application that sent you here is not registered.")
    sent = params.get("redirect_uri")
    if sent is None:
        # RFC 6749 §3.1.2.3: may be omitted only when it cannot be ambiguous.
        if len(client.redirect_uris) != 1:
            raise UntrustedRedirect("The application did not say where to send you back.")
        uri = client.redirect_uris[0]
    elif redirects.find(client.redirect_uris, sent, allow_localhost=client.allow_localhost):
        # RFC 9700 §4.1.3: exact string matching; RFC 8252 §7.3: any port on a loopback literal
        uri = sent
    else:
        raise UntrustedRedirect("The application asked to send you to an address it has not registered.")
    # RFC 6749 §4.2.2.1: implicit responses, errors included, travel in the fragment; a
    # response_mode may choose another way (Multiple Response Types §2.1, Form Post).
    return Target(client, uri, sent, params.get("state"), responses.mode_of(params))


def validate(target: Target, params: Mapping[str, str], settings: Settings) -> AuthorizationRequest:
    """Return the validated request, or raise the OAuthError to redirect back with."""
    client = target.client
    response_type = params.get("response_type")
    if response_type is None:
        raise InvalidRequest("response_type is required")
    words = responses.response_words(response_type)
    if words is None:
        raise UnsupportedResponseType("response_type must be one of: " + ", ".join(responses.names()))
    if not responses.RESPONSE_TYPES[words] <= client.grant_types:
        raise UnauthorizedClient(f"this client may not use response_type={response_type}")
    responses.check_mode(params)
    if "request" in params:  # OpenID Connect Core §6: request objects are not supported
        raise RequestNotSupported("request objects are not supported; send plain parameters")
    if "request_uri" in params:
        raise RequestUriNotSupported("request_uri is not supported; send plain parameters")
    scope = requested_scope(client, params.get("scope"))
    audience = requested_audience(client, settings, params.get("resource"))
    nonce = params.get("nonce")
    if nonce is not None and not 0 < len(nonce) <= MAX_NONCE:
        raise InvalidRequest(f"nonce must be 1-{MAX_NONCE} characters")
    if responses.ID_TOKEN in words:
        _check_id_token_request(scope, nonce)
    challenge = None
    if responses.CODE in words:
        challenge = pkce.checked_challenge(params.get("code_challenge"), params.get("code_challenge_method"))
        if challenge is None and client.require_pkce:
            # RFC 9700 §2.1.1: public clients (and those configured so) MUST use PKCE.
            raise InvalidRequest("this client must send code_challenge with code_challenge_method=S256")
    jkt = params.get("dpop_jkt")
    # RFC 9449 §10: a base64url SHA-256 JWK thumbprint; the token request proves the key.
    if jkt is not None and not _JKT.fullmatch(jkt):
        raise InvalidRequest("dpop_jkt must be a base64url SHA-256 JWK thumbprint (RFC 9449 §10)")
    asked = interaction(params)
    kept = {name: params[name] for name in PARAMS if name in params}
    openid = "openid" in scope
    return AuthorizationRequest(
        target, response_type, scope, audience, challenge, kept, jkt, nonce=nonce if openid else None,
        interaction=asked, words=words,
    )  # fmt: skip


def _check_id_token_request(scope: Sequence[str], nonce: str | None) -> None:
    """Apply Core §3.2.2.1 / §3.3.2.11 to a response that returns an id_token from here."""
    if "openid" not in scope:
        raise InvalidRequest("response_type id_token needs the openid scope")
    if nonce is None:
        # The nonce is what binds an id_token from the front channel to the client's session.
        raise InvalidRequest("nonce is required when the id_token comes from the authorization endpoint")


def location(target: Target, params: Sequence[tuple[str, str]]) -> str:
    """Return the redirect URI with response parameters added, keeping its own query (§3.1.2)."""
    parts = urlsplit(target.redirect_uri)
    # An http(s) URI without a path means "/" (RFC 9110 §4.2.3): https://www.example.com gets
    # https://www.example.com/?code=…, as the old README showed. Other schemes stay as they are.
    path = parts.path or ("/" if parts.scheme in ("http", "https") else "")
    encoded = urlencode(params, quote_via=quote)
    if target.fragment:
        return urlunsplit((parts.scheme, parts.netloc, path, parts.query, encoded))
    query = f"{parts.query}&{encoded}" if parts.query else encoded
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def response_params(target: Target, issuer: str, values: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return `values` plus `state` (RFC 6749 §4.1.2) and `iss` (RFC 9207 §2)."""
    out = list(values)
    if target.state is not None:
        out.append(("state", target.state))
    out.append(("iss", issuer))
    return out


def error_params(target: Target, issuer: str, error: OAuthError) -> list[tuple[str, str]]:
    """Return the response parameters of an error (RFC 6749 §4.1.2.1, §4.2.2.1)."""
    values = [("error", error.error)]
    if error.description:
        values.append(("error_description", error.description))
    return response_params(target, issuer, values)


def error_location(target: Target, issuer: str, error: OAuthError) -> str:
    """Return the redirect carrying an error (RFC 6749 §4.1.2.1, §4.2.2.1)."""
    return location(target, error_params(target, issuer, error))
