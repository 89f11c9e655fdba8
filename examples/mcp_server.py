"""An MCP server in one file, on the official `mcp` SDK, protected by jwtauth access tokens.

    pip install -e '.[examples]'
    python examples/mcp_server.py --issuer http://127.0.0.1:8000 --port 8002

Streamable HTTP at /mcp, one tool, `whoami`. Every request needs a bearer token whose `aud` is
the resource identifier (`http://127.0.0.1:<port>/mcp` unless `--resource` says otherwise) and
whose scope holds `--scope`; the RFC 9728 metadata at /.well-known/oauth-protected-resource/mcp
tells an MCP client (Claude Code, VS Code, the SDK's own OAuth client) where to sign in.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import uvicorn
from mcp.server.mcpserver import Context, MCPServer

from jwtauth.verify import BearerASGI, Fetch, ProtectedResource, Verifier, urllib_fetch
from jwtauth.verify.middleware import CLAIMS_KEY


def build_server() -> MCPServer:
    """Return the MCP server with its one tool."""
    server = MCPServer("jwtauth example")

    @server.tool()
    def whoami(ctx: Context) -> dict[str, Any]:
        """Tell who signed in: the access token's subject, client and scope."""
        request = ctx.request_context.request  # the Starlette request of this MCP message
        if request is None:  # not over HTTP (stdio): no token, nobody signed in
            raise ValueError("whoami needs the streamable HTTP transport")
        claims: dict[str, Any] = request.scope[CLAIMS_KEY]  # put there by BearerASGI
        return {key: claims.get(key, "") for key in ("sub", "client_id", "scope")}

    return server


def build_app(
    issuer: str, resource: str, scope: str = "read", host: str = "127.0.0.1", fetch: Fetch = urllib_fetch
) -> BearerASGI:
    """Return the ASGI app: RFC 9728 metadata, bearer tokens for `resource`, then MCP at /mcp."""
    mcp_app = build_server().streamable_http_app(streamable_http_path="/mcp", host=host)
    verifier = Verifier(issuer=issuer, audience=resource, fetch=fetch)
    metadata = ProtectedResource.of(resource, issuer, [scope], resource_name="jwtauth example MCP server")
    return BearerASGI(mcp_app, verifier, metadata, required_scopes=[scope])


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issuer", required=True, help="the jwtauth issuer URL")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--resource", help="the resource identifier (default http://HOST:PORT/mcp)")
    parser.add_argument("--scope", default="read", help="the scope every MCP request needs")
    args = parser.parse_args(argv)
    resource = args.resource or f"http://{args.host}:{args.port}/mcp"
    app = build_app(args.issuer.rstrip("/"), resource, args.scope, args.host)
    print(f"MCP server on http://{args.host}:{args.port}/mcp for {resource}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
