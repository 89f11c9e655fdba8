"""jwtauth.verify.middleware: RFC 9728 metadata, bearer and DPoP tokens for Falcon, WSGI and ASGI apps."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import falcon
import falcon.testing
import pytest

from jwtauth.verify import (
    BearerASGI,
    BearerWSGI,
    DPoPOptions,
    NonceSource,
    ProtectedResource,
    ProtectedResourceMiddleware,
)
from jwtauth.verify.middleware import CLAIMS_KEY
from tests.dpopkit import DPoPKey
from tests.test_verify import AUDIENCE, ISSUER, NOW, Key, World, claims, make_key, make_world, mint

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


# --- DPoP (RFC 9449 §7) beside or instead of Bearer ---------------------------------------------------

HELLO = AUDIENCE + "/hello"


def challenges(www_authenticate: str) -> dict[str, dict[str, str]]:
    """Split a WWW-Authenticate value into {scheme: params} (our params never hold ', DPoP ')."""
    found = {}
    for part in re.split(r", (?=(?:DPoP|Bearer) )", www_authenticate):
        scheme, _, rest = part.partition(" ")
        found[scheme] = dict(_PARAM.findall(rest))
    return found


def bound_token(es: Key, client: DPoPKey, **more: Any) -> str:
    return mint(es, claims(cnf={"jkt": client.jkt}, **more))


def dpop_headers(client: DPoPKey, token: str, url: str = HELLO, **claims: Any) -> dict[str, str]:
    proof = client.proof(htm="GET", htu=url, iat=NOW, token=token, **claims)
    return {"Authorization": f"DPoP {token}", "DPoP": proof}


def dpop_api(world: World, **options: Any) -> falcon.testing.TestClient:
    dpop = DPoPOptions(base_url=AUDIENCE, clock=world.clock, **options)
    middleware = ProtectedResourceMiddleware(world.verifier, META, required_scopes=["read"], dpop=dpop)
    app = falcon.App(middleware=[middleware])
    app.add_route("/hello", Hello())
    return falcon.testing.TestClient(app)


def test_without_dpop_the_metadata_says_nothing_of_it(api: falcon.testing.TestClient) -> None:
    document = api.simulate_get("/.well-known/oauth-protected-resource").json
    assert "dpop_signing_alg_values_supported" not in document
    assert "dpop_bound_access_tokens_required" not in document


@pytest.mark.parametrize("allow_bearer", [True, False])
def test_dpop_metadata_and_bare_challenges(world: World, allow_bearer: bool) -> None:
    api = dpop_api(world, allow_bearer=allow_bearer)
    document = api.simulate_get("/.well-known/oauth-protected-resource").json
    assert document["dpop_signing_alg_values_supported"] == ["ES256", "EdDSA", "PS256", "RS256"]
    assert document["dpop_bound_access_tokens_required"] is (not allow_bearer)
    refused = api.simulate_get("/hello")
    assert refused.status_code == 401
    offered = challenges(refused.headers["WWW-Authenticate"])
    assert set(offered) == ({"DPoP", "Bearer"} if allow_bearer else {"DPoP"})
    assert offered["DPoP"]["algs"] == "ES256 EdDSA PS256 RS256"
    assert all(p["resource_metadata"] == METADATA_URL and "error" not in p for p in offered.values())


def test_dpop_bound_token_passes_once_and_never_as_bearer(world: World, es: Key) -> None:
    api, client = dpop_api(world), DPoPKey()
    token = bound_token(es, client)
    headers = dpop_headers(client, token)
    assert api.simulate_get("/hello", headers=headers).json == {"sub": "user-1"}
    replayed = challenges(api.simulate_get("/hello", headers=headers).headers["WWW-Authenticate"])
    assert replayed["DPoP"]["error"] == "invalid_dpop_proof" and "error" not in replayed["Bearer"]
    # RFC 9449 §7.2: a bound token sent as Bearer is a downgrade, refused on the Bearer challenge.
    downgrade = api.simulate_get("/hello", headers={"Authorization": f"Bearer {token}"})
    assert downgrade.status_code == 401
    offered = challenges(downgrade.headers["WWW-Authenticate"])
    assert offered["Bearer"]["error"] == "invalid_token"
    assert offered["Bearer"]["resource_metadata"] == METADATA_URL
    # A plain bearer token still passes where Bearer is allowed.
    assert api.simulate_get("/hello", headers={"Authorization": f"Bearer {mint(es)}"}).status_code == 200


def test_dpop_required_refuses_every_bearer_token(world: World, es: Key) -> None:
    api, client = dpop_api(world, allow_bearer=False), DPoPKey()
    refused = api.simulate_get("/hello", headers={"Authorization": f"Bearer {mint(es)}"})
    assert refused.status_code == 401 and set(challenges(refused.headers["WWW-Authenticate"])) == {"DPoP"}
    token = bound_token(es, client)
    assert api.simulate_get("/hello", headers=dpop_headers(client, token)).status_code == 200


def test_dpop_checks_the_proof_against_the_request(world: World, es: Key) -> None:
    api, client = dpop_api(world), DPoPKey()
    token = bound_token(es, client)
    other_token = mint(es, claims(cnf={"jkt": client.jkt}, jti="2"))
    for headers, error in (
        (dpop_headers(client, token, url=AUDIENCE + "/other"), "invalid_dpop_proof"),  # another URL
        (dpop_headers(DPoPKey(), token), "invalid_token"),  # signed by a key the token is not bound to
        (dpop_headers(client, other_token) | {"Authorization": f"DPoP {token}"}, "invalid_dpop_proof"),
        ({"Authorization": f"DPoP {token}"}, "invalid_dpop_proof"),  # no proof
    ):
        result = api.simulate_get("/hello", headers=headers)
        assert result.status_code == 401
        assert challenges(result.headers["WWW-Authenticate"])["DPoP"]["error"] == error
    assert api.simulate_get("/hello", headers=dpop_headers(client, token)).status_code == 200  # none spent


def test_dpop_insufficient_scope_names_the_scope_on_the_dpop_challenge(world: World, es: Key) -> None:
    api, client = dpop_api(world), DPoPKey()
    token = bound_token(es, client, scope="write")
    result = api.simulate_get("/hello", headers=dpop_headers(client, token))
    assert result.status_code == 403
    offered = challenges(result.headers["WWW-Authenticate"])
    assert offered["DPoP"]["error"] == "insufficient_scope" and offered["DPoP"]["scope"] == "read"
    assert "scope" not in offered["Bearer"]


def test_wsgi_wrapper_with_dpop_and_nonces(world: World, es: Key) -> None:
    nonces = NonceSource(lambda: [b"rs secret"], clock=world.clock)
    dpop = DPoPOptions(allow_bearer=False, nonces=nonces, clock=world.clock)
    app = BearerWSGI(_inner_wsgi, world.verifier, META, required_scopes=["read"], dpop=dpop)
    status, _, body = _wsgi_call(app, "/.well-known/oauth-protected-resource")
    assert json.loads(body)["dpop_bound_access_tokens_required"] is True
    client = DPoPKey()
    token = bound_token(es, client)
    url = "http://falconframework.org/hello"  # create_environ's host: the URL as this server sees it
    status, headers, _ = _wsgi_call(app, "/hello", dpop_headers(client, token, url=url))
    assert status.startswith("401") and headers["DPoP-Nonce"]
    assert challenges(headers["WWW-Authenticate"])["DPoP"]["error"] == "use_dpop_nonce"
    nonce = headers["DPoP-Nonce"]
    status, _, body = _wsgi_call(app, "/hello", dpop_headers(client, token, url=url, nonce=nonce))
    assert status == "200 OK" and json.loads(body) == {"sub": "user-1"}


def test_asgi_wrapper_with_dpop(world: World, es: Key) -> None:
    app = BearerASGI(_inner_asgi, world.verifier, META, dpop=DPoPOptions(clock=world.clock))
    client = DPoPKey()
    token = bound_token(es, client)
    start, body = _asgi_call(app, "/mcp", dpop_headers(client, token, url=AUDIENCE + "/mcp"))
    assert start["status"] == 200 and json.loads(body["body"]) == {"sub": "user-1"}
    start, _ = _asgi_call(app, "/mcp", {"Authorization": f"Bearer {token}"})
    assert start["status"] == 401
    # Two DPoP headers are joined with a comma, which no single proof contains: refused.
    twice = dpop_headers(client, token, url=AUDIENCE + "/mcp")
    scope_headers = {**twice, "dpop": twice["DPoP"]}
    start, _ = _asgi_call(app, "/mcp", scope_headers)
    assert start["status"] == 401
