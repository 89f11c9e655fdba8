"""POST /api/v1/introspect (RFC 7662): tell an authenticated client whether its token is active."""

from __future__ import annotations

import falcon

from jwtauth.accounts.clients import ClientRegistry
from jwtauth.errors import InvalidClient, InvalidRequest, MethodNotAllowed
from jwtauth.resources.forms import read_form, reject_query
from jwtauth.resources.responses import send_json
from jwtauth.tokens.reader import TokenReader

INACTIVE = {"active": False}


class IntrospectResource:
    """The introspection endpoint; a client sees only its own tokens as active.

    Visibility: a token is reported active only to the client it was issued to. Any other
    client, a resource server included, gets `{"active": false}` for it, exactly as for an
    unknown, expired, revoked or forged token (RFC 7662 §2.2: no hint why). Resource servers
    verify our JWTs offline instead (jwtauth.verify).
    """

    def __init__(self, clients: ClientRegistry, reader: TokenReader) -> None:
        self.clients, self.reader = clients, reader

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        reject_query(req)
        params = read_form(req)
        client = self.clients.authenticate(req.get_header("Authorization"), params, req.context.client_addr)
        req.context.client_id = client.client_id  # the access and audit lines' `client_id`
        if client.public:
            # RFC 7662 §2.1, §4: the endpoint MUST require authorization, against token
            # scanning; a public client's id is no credential, so it cannot introspect.
            raise InvalidClient("introspection requires client authentication")
        token = params.get("token")
        if token is None:
            raise InvalidRequest("token is required")
        found = self.reader.read(token, params.get("token_type_hint"))
        body = INACTIVE
        if found is not None and found.client_id == client.client_id:
            body = found.response
        send_json(resp, body)  # RFC 7662 §4: no-store, responses carry token state

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise MethodNotAllowed("POST", "the introspection endpoint takes POST (RFC 7662 §2.1)")
