"""A resource server in one file: a Falcon API whose GET /hello needs a jwtauth access token.

    python examples/resource_server.py --issuer http://127.0.0.1:8000 \
        --resource https://api.example.com --port 8001

It verifies tokens offline with `jwtauth.verify` (keys from the issuer's /jwks, cached), demands
the audience `--resource` and the scope `--scope` (read), and publishes its RFC 9728 metadata at
/.well-known/oauth-protected-resource[/path], which every 401 names in `WWW-Authenticate`.
"""

from __future__ import annotations

import argparse
import socketserver
import sys
from collections.abc import Sequence
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import falcon

from jwtauth.verify import Fetch, ProtectedResource, ProtectedResourceMiddleware, Verifier, urllib_fetch


class Hello:
    """GET /hello: who the token speaks for."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        claims = req.context.claims  # put there by ProtectedResourceMiddleware
        resp.media = {key: claims.get(key, "") for key in ("sub", "client_id", "scope")}


def build_app(
    issuer: str, resource: str, scope: str = "read", fetch: Fetch = urllib_fetch
) -> falcon.App[falcon.Request, falcon.Response]:
    """Return the API: RFC 9728 metadata, then bearer tokens for `resource` with `scope`."""
    verifier = Verifier(issuer=issuer, audience=resource, fetch=fetch)
    metadata = ProtectedResource.of(resource, issuer, [scope], resource_name="jwtauth example API")
    app = falcon.App(middleware=[ProtectedResourceMiddleware(verifier, metadata, required_scopes=[scope])])
    app.add_route("/hello", Hello())
    return app


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
    args = parser.parse_args(argv)
    app = build_app(args.issuer.rstrip("/"), args.resource, args.scope)
    with make_server(args.host, args.port, app, _ThreadingServer, _ShortLog) as server:
        print(f"resource server on http://{args.host}:{args.port}/hello for {args.resource}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
