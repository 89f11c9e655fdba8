"""client_credentials (RFC 6749 §4.4): the client acts on its own behalf."""

from __future__ import annotations

from typing import Any

from jwtauth.config.settings import Settings
from jwtauth.errors import UnauthorizedClient
from jwtauth.grants.base import TokenRequest
from jwtauth.oauth.scopes import requested_audience, requested_scope
from jwtauth.tokens.factory import TokenFactory


class ClientCredentialsGrant:
    """Issue an access token whose subject is the client itself; no refresh token (§4.4.3)."""

    grant_type = "client_credentials"

    def __init__(self, settings: Settings, tokens: TokenFactory) -> None:
        self.settings, self.tokens = settings, tokens

    def handle(self, request: TokenRequest) -> dict[str, Any]:
        """Return the token response for an authenticated confidential client."""
        client = request.client
        if client.public:
            # §4.4: MUST only be used by confidential clients.
            raise UnauthorizedClient("client_credentials requires a confidential client")
        return self.tokens.issue(
            client=client,
            subject=client.client_id,
            for_user=False,
            scope=requested_scope(client, request.params.get("scope")),
            audience=requested_audience(client, self.settings, request.params.get("resource")),
            jkt=request.dpop_jkt,
        )
