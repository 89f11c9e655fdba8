"""A resource server in one file: a Falcon API whose GET /hello needs a jwtauth access token.

    python examples/resource_server.py --issuer http://127.0.0.1:8000 \
        --resource https://api.example.com --port 8001

It verifies tokens offline with `jwtauth.verify` (keys from the issuer's /jwks, cached), demands
the audience `--resource` and the scope `--scope` (read), and publishes its RFC 9728 metadata at
/.well-known/oauth-protected-resource[/path], which every 401 names in `WWW-Authenticate`.

Tokens: DPoP-bound ones (`Authorization: DPoP` with a proof, RFC 9449) and bearer tokens by
default; `--require-dpop` takes DPoP-bound tokens only, `--no-dpop` bearer tokens only. A bound
token sent as Bearer is always refused. Behind a proxy, `--public-url` is the URL clients call
(what DPoP proofs name as `htu`); without it, the request's own scheme and host.
"""

from __future__ import annotations

import argparse
import socketserver
import sys
from collections.abc import Sequence
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import falcon

from jwtauth.verify import (
    DPoPOptions,
    Fetch,
    ProtectedResource,
    ProtectedResourceMiddleware,
    Verifier,
    urllib_fetch,
)

# DPoP-bound and bearer tokens; frozen, and each app builds its own replay cache from it.
BOTH = DPoPOptions()


class Hello:
    """GET /hello: who the token speaks for (and, for a DPoP-bound token, which key holds it)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        claims = req.context.claims  # put there by ProtectedResourceMiddleware
        resp.media = {key: claims.get(key, "") for key in ("sub", "client_id", "scope")}
        proof = getattr(req.context, "dpop", None)  # the checked DPoP proof, if one was sent
        if proof is not None:
            resp.media["dpop_jkt"] = proof.jkt


def build_app(
    issuer: str,
    resource: str,
    scope: str = "read",
    fetch: Fetch = urllib_fetch,
    *,
    dpop: DPoPOptions | None = BOTH,
) -> falcon.App[falcon.Request, falcon.Response]:
    """Return the API: RFC 9728 metadata, then tokens for `resource` with `scope` (DPoP unless None)."""
    verifier = Verifier(issuer=issuer, audience=resource, fetch=fetch)
    metadata = ProtectedResource.of(resource, issuer, [scope], resource_name="jwtauth example API")
    guard = ProtectedResourceMiddleware(verifier, metadata, required_scopes=[scope], dpop=dpop)
    app = falcon.App(middleware=[guard])
    app.add_route("/hello", Hello())
    return app


def dpop_options(require: bool, off: bool, public_url: str | None) -> DPoPOptions | None:
    """Return the DPoP settings the command line asks for (None: bearer tokens only)."""
    if off:
        return None
    # One replay cache per process is enough here: the example serves from a single process.
    return DPoPOptions(allow_bearer=not require, base_url=public_url)


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _ShortLog(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Log one short line per request to stderr."""
        sys.stderr.write(f"{format % args}\n")


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issuer", required=True, help="the jwtauth issuer URL")
    parser.add_argument("--resource", required=True, help="this API's identifier: the tokens' aud")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--scope", default="read", help="the scope GET /hello needs")
    tokens = parser.add_mutually_exclusive_group()
    tokens.add_argument("--require-dpop", action="store_true", help="DPoP-bound tokens only, never Bearer")
    tokens.add_argument("--no-dpop", action="store_true", help="bearer tokens only")
    parser.add_argument("--public-url", help="the URL clients call, behind a proxy (DPoP's htu)")
    args = parser.parse_args(argv)
    dpop = dpop_options(args.require_dpop, args.no_dpop, args.public_url)
    app = build_app(args.issuer.rstrip("/"), args.resource, args.scope, dpop=dpop)
    with make_server(args.host, args.port, app, _ThreadingServer, _ShortLog) as server:
        print(f"resource server on http://{args.host}:{args.port}/hello for {args.resource}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
