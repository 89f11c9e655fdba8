"""POST /api/v1/revoke (RFC 7009): end a grant from a refresh token or an access token.

What revoking means here:
- a refresh token (current or rotated-out): its whole family is deleted, so the newest refresh
  token fails too, and introspection reports the family's access tokens inactive;
- an access token issued with a refresh token (it carries the family id `fid`): the same, its
  family ends. Resource servers that verify offline still accept it until its `exp`;
- an access token without a family (client_credentials, or a client without refresh_token):
  nothing can be revoked, it is self-contained. RFC 7009 §2.2.1 names this case:
  `unsupported_token_type`, so the client knows the token stays valid until `exp`;
- an unknown, expired or forged token: 200, nothing happens (RFC 7009 §2.2).

Another client's token (RFC 7009 §2.1: the server "verifies whether the token was issued to the
client making the revocation request. If this validation fails, the request is refused and the
client is informed of the error"): a confidential client gets 400 `unauthorized_client` (RFC 6749
§5.2: "the authenticated client is not authorized" to do this) and the token stays valid for its
owner. A public client proves no identity, so an error would tell anyone who names a client_id
that a token is live: it gets 200 and nothing is revoked (as node-oidc-provider does).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import falcon

from jwtauth.accounts.clients import ClientRegistry
from jwtauth.config.clients import Client
from jwtauth.errors import InvalidRequest, MethodNotAllowed, UnauthorizedClient, UnsupportedTokenType
from jwtauth.observability import NO_EVENTS, Events
from jwtauth.resources.forms import read_form, reject_query
from jwtauth.resources.responses import NO_STORE
from jwtauth.store import RefreshStore
from jwtauth.tokens.reader import TokenReader, looks_like_refresh


class RevokeResource:
    """The revocation endpoint; every client may revoke only its own tokens."""

    def __init__(
        self,
        clients: ClientRegistry,
        reader: TokenReader,
        refresh: RefreshStore,
        clock: Callable[[], float] = time.time,
        events: Events = NO_EVENTS,
    ) -> None:
        self.clients, self.reader, self.refresh, self.clock = clients, reader, refresh, clock
        self.events = events

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        reject_query(req)
        params = read_form(req)
        client = self.clients.authenticate(req.get_header("Authorization"), params, req.context.client_addr)
        req.context.client_id = client.client_id  # CORS, and the access and audit lines' `client_id`
        token = params.get("token")
        if token is None:
            raise InvalidRequest("token is required")
        # token_type_hint is optional and never needed: the two formats cannot be confused,
        # and an unknown hint is ignored (RFC 7009 §2.1: the server extends its search).
        if looks_like_refresh(token):
            self._revoke_refresh(client, token)
        else:
            self._revoke_access(client, token)
        resp.set_headers(NO_STORE)
        resp.status = falcon.HTTP_200  # RFC 7009 §2.2: the body is empty and ignored

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise MethodNotAllowed("POST", "the revocation endpoint takes POST (RFC 7009 §2.1)")

    def _revoke_refresh(self, client: Client, token: str) -> None:
        now = self.clock()
        # Atomic: the store deletes the family only if this client owns it.
        if self.refresh.revoke(token, client_id=client.client_id, now=now):
            self.events.revoked()
            return
        owner = self.refresh.lookup(token, now=now)
        if owner is not None and owner.client_id != client.client_id:
            _refuse(client)

    def _revoke_access(self, client: Client, token: str) -> None:
        claims = self.reader.access_claims(token)
        if claims is None:
            return  # invalid, expired or not ours: RFC 7009 §2.2 answers 200
        if claims["client_id"] != client.client_id:
            _refuse(client)
            return
        fid = claims.get("fid")
        if not isinstance(fid, str):
            raise UnsupportedTokenType(
                "this access token is self-contained and cannot be revoked; it stays valid until its exp"
            )
        now = self.clock()
        if self.refresh.revoke(fid, client_id=client.client_id, now=now):
            self.events.revoked()
            return
        if self.refresh.is_revoked(fid):
            return
        # The family ended by expiry, leaving no tombstone: the token lives out its exp.
        raise UnsupportedTokenType("this access token's grant has ended; it stays valid until its exp")


def _refuse(client: Client) -> None:
    """Refuse to revoke another client's token (see the module docstring)."""
    if not client.public:
        raise UnauthorizedClient("this token was not issued to this client")
