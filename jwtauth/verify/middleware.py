"""Protect a whole app and publish its RFC 9728 metadata: Falcon middleware, WSGI and ASGI wrappers.

All three serve ``ProtectedResource.path`` (``/.well-known/oauth-protected-resource[/path]``)
without a token, require a valid bearer token everywhere else (except ``exempt_paths``), and
name the metadata URL in every challenge (RFC 9728 §5.1), so a client that meets a 401 finds
the authorization server on its own. With ``dpop=DPoPOptions(...)`` they accept DPoP-bound
tokens (RFC 9449 §7) beside bearer tokens, or instead of them (``allow_bearer=False``), and the
metadata says so (``dpop_signing_alg_values_supported``, ``dpop_bound_access_tokens_required``).
The checks themselves are ``BearerAuth``'s or ``DPoPAuth``'s: the WSGI and ASGI wrappers hand
them a ``falcon.Request`` built from the environ or scope, so every framework gets one
implementation of the rules. Claims land on ``req.context.claims`` (Falcon),
``environ["jwtauth.claims"]`` (WSGI) or ``scope["jwtauth.claims"]`` (ASGI).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, MutableMapping
from typing import Any, Final

import falcon

from jwtauth.verify.dpopauth import DPoPAuth, DPoPOptions
from jwtauth.verify.hooks import BearerAuth
from jwtauth.verify.resource import ProtectedResource
from jwtauth.verify.verifier import Verifier

__all__ = ["CLAIMS_KEY", "BearerASGI", "BearerWSGI", "ProtectedResourceMiddleware"]

CLAIMS_KEY: Final = "jwtauth.claims"
# Metadata changes rarely; an hour of caching spares the resource server repeated discovery.
_CACHE: Final = "public, max-age=3600"
_SCHEMES: Final = {"http": "http", "https": "https", "ws": "http", "wss": "https"}

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Guard:
    """What the three front doors share: the metadata, the exempt paths and one BearerAuth or DPoPAuth."""

    def __init__(
        self,
        verifier: Verifier,
        resource: ProtectedResource,
        required_scopes: Iterable[str],
        realm: str,
        exempt_paths: Collection[str],
        dpop: DPoPOptions | None = None,
    ) -> None:
        self.resource = resource
        self.exempt = frozenset(exempt_paths)
        self.auth: BearerAuth | DPoPAuth
        if dpop is None:
            self.body = resource.body()
            self.auth = BearerAuth(
                verifier, required_scopes=required_scopes, realm=realm, resource_metadata=resource.url
            )
        else:  # the document describes what the guard enforces: both come from one DPoPOptions
            self.body = resource.body(**dpop.metadata())
            self.auth = dpop.auth(
                verifier, required_scopes=required_scopes, realm=realm, resource_metadata=resource.url
            )

    def route(self, path: str) -> str:
        """Return 'metadata', 'open' or 'guarded' for a request path."""
        if path == self.resource.path:
            return "metadata"
        return "open" if path in self.exempt else "guarded"

    def metadata_answer(self, method: str) -> tuple[int, list[tuple[str, str]], bytes]:
        """Return status, headers and body of a request for the metadata document (RFC 9728 §3.2)."""
        if method not in ("GET", "HEAD"):
            return 405, [("Allow", "GET, HEAD"), ("Content-Length", "0")], b""
        body = self.body if method == "GET" else b""
        headers = [("Content-Type", "application/json"), ("Cache-Control", _CACHE)]
        return 200, [*headers, ("Content-Length", str(len(self.body)))], body

    def check(self, req: falcon.Request) -> dict[str, Any] | tuple[int, list[tuple[str, str]], bytes]:
        """Return the claims of the request, or the refusal to send (status, headers, body)."""
        try:
            return self.auth.authenticate(req)
        except falcon.HTTPError as exc:
            body = exc.to_json()
            raw = exc.headers or {}
            pairs = raw.items() if isinstance(raw, Mapping) else raw
            headers = [(name, str(value)) for name, value in pairs]
            headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            return exc.status_code, headers, body


class ProtectedResourceMiddleware:
    """Falcon middleware: serve the RFC 9728 metadata, require a token on every other path."""

    def __init__(
        self,
        verifier: Verifier,
        resource: ProtectedResource,
        *,
        required_scopes: Iterable[str] = (),
        realm: str = "jwtauth",
        exempt_paths: Collection[str] = (),
        dpop: DPoPOptions | None = None,
    ) -> None:
        """Configure the verifier, the metadata, the scopes every request needs, open paths and DPoP."""
        self._guard = _Guard(verifier, resource, required_scopes, realm, exempt_paths, dpop)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer the metadata path; authenticate everything else before routing."""
        kind = self._guard.route(req.path)
        if kind == "metadata":
            status, headers, body = self._guard.metadata_answer(req.method)
            resp.status = status
            resp.set_headers([h for h in headers if h[0] != "Content-Length"])
            resp.data = body
            resp.complete = True  # no routing: the document is the whole answer
        elif kind == "guarded":
            req.context.claims = self._guard.auth.authenticate(req)


def _http_status(code: int) -> str:
    """Return the WSGI status line of ``code`` (``401 Unauthorized``)."""
    return str(falcon.code_to_http_status(code))


class BearerWSGI:
    """Wrap any WSGI app: RFC 9728 metadata, then bearer (or DPoP) tokens required (claims in the environ)."""

    def __init__(
        self,
        app: WSGIApp,
        verifier: Verifier,
        resource: ProtectedResource,
        *,
        required_scopes: Iterable[str] = (),
        realm: str = "jwtauth",
        exempt_paths: Collection[str] = (),
        dpop: DPoPOptions | None = None,
    ) -> None:
        """Wrap ``app``; the other arguments are ``ProtectedResourceMiddleware``'s."""
        self._app = app
        self._guard = _Guard(verifier, resource, required_scopes, realm, exempt_paths, dpop)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Answer or refuse the request, or pass it on with its claims."""
        kind = self._guard.route(environ.get("PATH_INFO") or "/")
        if kind == "metadata":
            status, headers, body = self._guard.metadata_answer(environ.get("REQUEST_METHOD", "GET"))
        elif kind == "open":
            return self._app(environ, start_response)
        else:
            outcome = self._guard.check(falcon.Request(environ))
            if isinstance(outcome, dict):
                environ[CLAIMS_KEY] = outcome
                return self._app(environ, start_response)
            status, headers, body = outcome
        start_response(_http_status(status), headers)
        return [body]


def _environ(scope: Scope) -> Environ:
    """Return a body-less WSGI environ describing an ASGI HTTP request (for ``falcon.Request``)."""
    server = scope.get("server") or ("localhost", 80)
    environ: Environ = {
        "REQUEST_METHOD": scope.get("method", "GET"),
        "SCRIPT_NAME": scope.get("root_path", ""),
        "PATH_INFO": scope.get("path", "/"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] or 80),
        "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
        "wsgi.url_scheme": _SCHEMES.get(scope.get("scheme", "http"), "http"),
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{name}"
        value = raw_value.decode("latin-1")
        # RFC 9110 §5.3: repeated fields combine with commas (a repeated Authorization stays malformed).
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


class BearerASGI:
    """Wrap any ASGI app (Starlette, FastAPI, the MCP SDK): RFC 9728 metadata, then bearer (or DPoP) tokens.

    Verification may fetch the issuer's keys, so it runs in a worker thread.
    """

    def __init__(
        self,
        app: ASGIApp,
        verifier: Verifier,
        resource: ProtectedResource,
        *,
        required_scopes: Iterable[str] = (),
        realm: str = "jwtauth",
        exempt_paths: Collection[str] = (),
        dpop: DPoPOptions | None = None,
    ) -> None:
        """Wrap ``app``; the other arguments are ``ProtectedResourceMiddleware``'s."""
        self._app = app
        self._guard = _Guard(verifier, resource, required_scopes, realm, exempt_paths, dpop)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer or refuse the request, or pass it on with its claims."""
        if scope["type"] not in ("http", "websocket"):  # lifespan: nothing to protect
            await self._app(scope, receive, send)
            return
        kind = self._guard.route(scope.get("path", "/"))
        if kind == "open":
            await self._app(scope, receive, send)
            return
        if kind == "metadata":
            outcome: Any = self._guard.metadata_answer(scope.get("method", "GET"))
        else:
            request = falcon.Request(_environ(scope))
            outcome = await asyncio.to_thread(self._guard.check, request)
            if isinstance(outcome, dict):
                scope[CLAIMS_KEY] = outcome
                await self._app(scope, receive, send)
                return
        status, headers, body = outcome
        if scope["type"] == "websocket":  # refuse the handshake (RFC 6455 §7.4.1: 1008 policy)
            await send({"type": "websocket.close", "code": 1008})
            return
        raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
