"""CORS for browser apps (Fetch standard §3.2): per client on the endpoints SPAs call.

- token, userinfo and revocation answer CORS only for an origin in the `allowed_origins` of the
  client the request turned out to be (`req.context.client_id`, set by the resource once it knows
  it). A request that fails before the client is known (a bad client_id, no token) is allowed for
  any origin some client registered, so the app can read the error; any other origin gets no CORS
  headers at all, exactly as before.
- A preflight cannot name its client (it has no body), so it is answered for any registered
  origin; the real request is then checked against its client.
- JWKS and the discovery documents are public: any origin may read them.
The origins are those of the clients in use: a settings reload adds and removes them.
Credentials (cookies) are never allowed: these endpoints take tokens in headers and bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import falcon

from jwtauth.accounts.live import Derived, Live
from jwtauth.config.clients import Client
from jwtauth.resources import paths

PER_CLIENT = {paths.TOKEN: "POST", paths.USERINFO: "GET, POST", paths.REVOKE: "POST"}
PUBLIC = frozenset((*paths.JWKS, *paths.METADATA))
ALLOW_HEADERS = "Authorization, Content-Type, DPoP"
EXPOSE_HEADERS = "WWW-Authenticate, DPoP-Nonce, Retry-After"
MAX_AGE = "600"


@dataclass(frozen=True)
class _Origins:
    """Each client's registered origins, and every origin some client registered."""

    by_client: dict[str, frozenset[str]]
    registered: frozenset[str]


def _origins(clients: Mapping[str, Client]) -> _Origins:
    by_client = {client_id: frozenset(c.allowed_origins) for client_id, c in clients.items()}
    return _Origins(by_client, frozenset(o for origins in by_client.values() for o in origins))


class CORS:
    """Falcon middleware adding CORS headers where a browser app may call us."""

    def __init__(self, clients: Live[Client]) -> None:
        self._origins = Derived(_origins, clients)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer a preflight (OPTIONS with Access-Control-Request-Method) at once."""
        origin = req.env.get("HTTP_ORIGIN")  # Falcon's get_header, without its name folding
        if origin is None or req.method != "OPTIONS" or not req.get_header("Access-Control-Request-Method"):
            return
        allowed: str | None
        if req.path in PUBLIC:
            methods, allowed = "GET, HEAD", "*"
        elif req.path in PER_CLIENT:
            registered = self._origins.get().registered
            methods, allowed = PER_CLIENT[req.path], origin if origin in registered else None
        else:
            return
        resp.status = falcon.HTTP_204
        resp.complete = True
        resp.append_header("Vary", "Origin")
        if allowed is not None:
            resp.set_headers({
                "Access-Control-Allow-Origin": allowed,
                "Access-Control-Allow-Methods": methods,
                "Access-Control-Allow-Headers": ALLOW_HEADERS,
                "Access-Control-Max-Age": MAX_AGE,
            })  # fmt: skip

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any, ok: bool) -> None:
        """Allow the origin of an actual request when its client registered it."""
        origin = req.env.get("HTTP_ORIGIN")  # Falcon's get_header, without its name folding
        if origin is None or req.method == "OPTIONS":
            return
        if req.path in PUBLIC:
            resp.set_header("Access-Control-Allow-Origin", "*")
            return
        if req.path not in PER_CLIENT:
            return
        client_id = getattr(req.context, "client_id", None)
        origins = self._origins.get()
        allowed = origins.registered if client_id is None else origins.by_client.get(client_id, frozenset())
        resp.append_header("Vary", "Origin")
        if origin in allowed:
            resp.set_header("Access-Control-Allow-Origin", origin)
            resp.set_header("Access-Control-Expose-Headers", EXPOSE_HEADERS)
