"""POST /api/v1/tokens: parse, authenticate the client, dispatch to the grant by map lookup."""

from __future__ import annotations

from collections.abc import Mapping

import falcon

from jwtauth.accounts.clients import ClientRegistry
from jwtauth.errors import InvalidRequest, MethodNotAllowed, UnauthorizedClient, UnsupportedGrantType
from jwtauth.grants.base import Grant, TokenRequest
from jwtauth.oauth.dpop import TokenEndpointDPoP
from jwtauth.resources.forms import read_form, reject_query
from jwtauth.resources.responses import send_json


class TokenResource:
    """The token endpoint (RFC 6749 §3.2) for every grant."""

    def __init__(
        self, clients: ClientRegistry, grants: Mapping[str, Grant], dpop: TokenEndpointDPoP
    ) -> None:
        self.clients, self.grants, self.dpop = clients, grants, dpop

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        reject_query(req)
        params = read_form(req)
        grant_type = params.get("grant_type")
        if grant_type is None:
            raise InvalidRequest("grant_type is required")
        grant = self.grants.get(grant_type)  # exact match: no case folding, no fallback
        if grant is None:
            raise UnsupportedGrantType("this grant_type is not supported")
        req.context.grant = grant_type  # the metrics and access-log label: a registered name only
        client = self.clients.authenticate(req.get_header("Authorization"), params, req.context.client_addr)
        req.context.client_id = client.client_id  # CORS, and the access and audit lines' `client_id`
        if grant_type not in client.grant_types:
            raise UnauthorizedClient("this client may not use this grant_type")
        # RFC 9449 §5: the proof binds the tokens; client_credentials needs no Redis, so its
        # proofs are checked statelessly while Redis is down (oauth/dpop.py).
        jkt = self.dpop.check(
            req.get_header("DPoP"), client=client, stateless=grant_type == "client_credentials"
        )
        body = grant.handle(TokenRequest(client, params, req.context.client_addr, dpop_jkt=jkt))
        req.context.access_token = body.get("access_token")  # the audit line keeps its ids only
        req.context.token_ids = getattr(body, "ids", None)  # ... known without decoding it
        nonce = self.dpop.nonce_header()
        send_json(resp, body, headers={"DPoP-Nonce": nonce} if nonce else None)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise MethodNotAllowed("POST", "the token endpoint takes POST (RFC 6749 §3.2)")
