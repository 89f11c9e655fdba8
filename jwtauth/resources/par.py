"""POST /api/v1/par: pushed authorization requests (RFC 9126 §2)."""

from __future__ import annotations

import time
from collections.abc import Callable

import falcon

from jwtauth.accounts.clients import ClientRegistry
from jwtauth.config.settings import Settings
from jwtauth.errors import InvalidRequest, MethodNotAllowed
from jwtauth.oauth.dpop import TokenEndpointDPoP
from jwtauth.oauth.par import pushable
from jwtauth.resources.forms import read_form, reject_query
from jwtauth.resources.responses import send_json
from jwtauth.store.par import PushedRequests


class PushedAuthorizationResource:
    """Authenticate the client, validate its authorization request now, keep it briefly."""

    def __init__(
        self,
        settings: Settings,
        clients: ClientRegistry,
        pushed: PushedRequests,
        dpop: TokenEndpointDPoP,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.clients, self.pushed, self.dpop, self.clock = (
            settings,
            clients,
            pushed,
            dpop,
            clock,
        )

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        reject_query(req)
        params = read_form(req)
        # RFC 9126 §2.1: client authentication as at the token endpoint.
        client = self.clients.authenticate(req.get_header("Authorization"), params, req.context.client_addr)
        request = pushable(self.clients, client, params, self.settings)
        proof = req.get_header("DPoP")
        if proof is not None:
            # RFC 9449 §10.1: a proof here binds the code to its key, as dpop_jkt would.
            jkt = self.dpop.check(proof, client=client, stateless=False)
            if request.get("dpop_jkt", jkt) != jkt:
                raise InvalidRequest("dpop_jkt differs from the key of the DPoP proof")
            request["dpop_jkt"] = str(jkt)
        ttl = self.settings.par_lifetime
        uri = self.pushed.push(client.client_id, request, ttl=ttl, now=self.clock())
        send_json(resp, {"request_uri": uri, "expires_in": ttl}, status=201)  # RFC 9126 §2.2

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise MethodNotAllowed("POST", "the pushed authorization request endpoint takes POST (RFC 9126 §2)")
