"""Pushed authorization requests (RFC 9126): what may be pushed, and when pushing is required.

A pushed request is validated at the push with exactly the rules of /authorize (validate), so
every error reaches the client as JSON over the back channel, where it can act on it. /authorize
then takes only `client_id` and `request_uri`; the pushed parameters are the whole request
(§4: never merged with anything in the URL). Redirect URIs stay exactly registered: the §2.4
allowance for unregistered ones is not taken.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from jwtauth.accounts.clients import ClientRegistry
from jwtauth.config.clients import Client
from jwtauth.config.settings import Settings
from jwtauth.errors import InvalidRequest
from jwtauth.oauth.authorization import (
    PARAMS,
    AuthorizationRequest,
    Target,
    UntrustedRedirect,
    identify,
    validate,
)

REQUEST_URI = "request_uri"


def must_push(client: Client, settings: Settings) -> bool:
    """Tell whether /authorize needs a request_uri from this client (RFC 9126 §5, §6)."""
    return client.require_par or settings.par_required


def pushable(
    clients: ClientRegistry, client: Client, params: Mapping[str, str], settings: Settings
) -> dict[str, str]:
    """Return the validated parameters to store for an authenticated client, or raise (JSON errors)."""
    if REQUEST_URI in params:
        raise InvalidRequest("request_uri cannot be pushed (RFC 9126 section 2.1)")
    if "request" in params:
        raise InvalidRequest("request objects are not supported; push plain parameters")
    request = {name: params[name] for name in PARAMS if name in params}
    request["client_id"] = client.client_id  # the authenticated client, whatever the body said
    if client.fapi2 and "redirect_uri" not in request:
        raise InvalidRequest("redirect_uri is required in a pushed request (FAPI 2.0 section 5.3.2.2)")
    try:
        target = identify(clients, request)
    except UntrustedRedirect:
        raise InvalidRequest("redirect_uri is not registered for this client") from None
    return validate(target, request, settings).params


def with_request_uri(
    target: Target, params: Mapping[str, str], uri: str, settings: Settings
) -> AuthorizationRequest:
    """Validate pushed parameters again and keep their request_uri, to which the form is bound."""
    request = validate(target, params, settings)
    return dataclasses.replace(request, params={**request.params, REQUEST_URI: uri})
