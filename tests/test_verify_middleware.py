"""jwtauth.verify.middleware: RFC 9728 metadata and bearer tokens for Falcon, WSGI and ASGI apps."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import falcon
import falcon.testing
import pytest

from jwtauth.verify import BearerASGI, BearerWSGI, ProtectedResource, ProtectedResourceMiddleware
from jwtauth.verify.middleware import CLAIMS_KEY
from tests.test_verify import AUDIENCE, ISSUER, Key, World, claims, make_key, make_world, mint

META = ProtectedResource.of(AUDIENCE, ISSUER, ["read"])
METADATA_URL = "https://api.example.com/.well-known/oauth-protected-resource"
_PARAM = re.compile(r'(\w+)="([^"]*)"')


def params(www_authenticate: str) -> dict[str, str]:
    assert www_authenticate.startswith("Bearer ")
    return dict(_PARAM.findall(www_authenticate))


@pytest.fixture
def world() -> World:
    return make_world()


@pytest.fixture
def es() -> Key:
    return make_key("ES256")


# --- Falcon -----------------------------------------------------------------------------------


class Hello:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"sub": req.context.claims["sub"]}


class Open:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"claims": hasattr(req.context, "claims")}


@pytest.fixture
def api(world: World) -> falcon.testing.TestClient:
    middleware = ProtectedResourceMiddleware(
        world.verifier, META, required_scopes=["read"], exempt_paths={"/healthz"}
    )
    app = falcon.App(middleware=[middleware])
    app.add_route("/hello", Hello())
    app.add_route("/healthz", Open())
    return falcon.testing.TestClient(app)


def test_falcon_serves_the_metadata_without_a_token(api: falcon.testing.TestClient) -> None:
    result = api.simulate_get("/.well-known/oauth-protected-resource")
    assert result.status_code == 200
    assert result.headers["Content-Type"] == "application/json"
    assert result.json["resource"] == AUDIENCE and result.json["authorization_servers"] == [ISSUER]
    assert api.simulate_head("/.well-known/oauth-protected-resource").status_code == 200
    assert api.simulate_post("/.well-known/oauth-protected-resource").status_code == 405


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 401, None),
        ({"Authorization": "Bearer not.a.token"}, 401, "invalid_token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, None),
    ],
)
def test_every_falcon_401_names_the_metadata(
    api: falcon.testing.TestClient, headers: dict[str, str], status: int, error: str | None
) -> None:
    for path in ("/hello", "/nowhere"):
        result = api.simulate_get(path, headers=headers)
        assert result.status_code == status
        found = params(result.headers["WWW-Authenticate"])
        assert found["resource_metadata"] == METADATA_URL
        assert found.get("error") == error


def test_falcon_passes_a_good_token_and_enforces_scopes(world: World, es: Key) -> None:
    middleware = ProtectedResourceMiddleware(world.verifier, META, required_scopes=["admin"])
    app = falcon.App(middleware=[middleware])
    app.add_route("/hello", Hello())
    client = falcon.testing.TestClient(app)
    refused = client.simulate_get("/hello", headers={"Authorization": f"Bearer {mint(es)}"})
    assert refused.status_code == 403
    assert params(refused.headers["WWW-Authenticate"])["resource_metadata"] == METADATA_URL


def test_falcon_token_for_another_resource_is_refused(api: falcon.testing.TestClient, es: Key) -> None:
    other = mint(es, claims(aud="https://other.example.com"))
    assert api.simulate_get("/hello", headers={"Authorization": f"Bearer {other}"}).status_code == 401
    good = api.simulate_get("/hello", headers={"Authorization": f"Bearer {mint(es)}"})
    assert good.status_code == 200 and good.json == {"sub": "user-1"}
    assert api.simulate_get("/healthz").json == {"claims": False}  # exempt: no token, no claims


# --- WSGI ---------------------------------------------------------------------------------------


def _wsgi_call(
    app: Callable[..., Any], path: str, headers: dict[str, str] | None = None
) -> tuple[str, dict[str, str], bytes]:
    environ = falcon.testing.create_environ(path=path, headers=headers or {})
    seen: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(response_headers)

    body = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], body


def _inner_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"sub": environ.get(CLAIMS_KEY, {}).get("sub")}).encode()]


def test_wsgi_wrapper(world: World, es: Key) -> None:
    app = BearerWSGI(_inner_wsgi, world.verifier, META, required_scopes=["read"])
    status, headers, body = _wsgi_call(app, "/.well-known/oauth-protected-resource")
    assert status == "200 OK" and json.loads(body)["resource"] == AUDIENCE
    status, headers, body = _wsgi_call(app, "/hello")
    assert status.startswith("401")
    assert params(headers["WWW-Authenticate"])["resource_metadata"] == METADATA_URL
    status, headers, body = _wsgi_call(app, "/hello", {"Authorization": "Bearer x.y.z"})
    assert params(headers["WWW-Authenticate"])["error"] == "invalid_token"
    status, _, body = _wsgi_call(app, "/hello", {"Authorization": f"Bearer {mint(es)}"})
    assert status == "200 OK" and json.loads(body) == {"sub": "user-1"}


# --- ASGI ---------------------------------------------------------------------------------------


async def _inner_asgi(scope: Any, receive: Any, send: Any) -> None:
    body = json.dumps({"sub": scope.get(CLAIMS_KEY, {}).get("sub")}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _asgi_call(
    app: Any, path: str, headers: dict[str, str] | None = None, kind: str = "http"
) -> list[dict[str, Any]]:
    scope = {
        "type": kind,
        "method": "GET",
        "path": path,
        "scheme": "https",
        "server": ("api.example.com", 443),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_asgi_wrapper(world: World, es: Key) -> None:
    app = BearerASGI(_inner_asgi, world.verifier, META, required_scopes=["read"])
    start, body = _asgi_call(app, "/.well-known/oauth-protected-resource")
    assert start["status"] == 200 and json.loads(body["body"])["authorization_servers"] == [ISSUER]
    start, body = _asgi_call(app, "/mcp")
    assert start["status"] == 401
    challenge = dict(start["headers"])[b"www-authenticate"].decode()
    assert params(challenge)["resource_metadata"] == METADATA_URL
    start, body = _asgi_call(app, "/mcp", {"Authorization": f"Bearer {mint(es)}"})
    assert start["status"] == 200 and json.loads(body["body"]) == {"sub": "user-1"}
    # A refused WebSocket handshake is closed, never passed on.
    assert _asgi_call(app, "/ws", kind="websocket") == [{"type": "websocket.close", "code": 1008}]


def test_the_verify_package_never_imports_the_server() -> None:
    """Resource servers install jwtauth.verify alone: no settings, no Redis, no server module."""
    import ast
    from pathlib import Path

    import jwtauth.verify

    for module in Path(jwtauth.verify.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith("jwtauth") or name.startswith("jwtauth.verify"), (module, name)
