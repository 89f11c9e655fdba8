"""examples/: the resource server and the MCP server answer as their docstrings say.

Both verify real jwtauth tokens: their verifier fetches the issuer's metadata and keys from a
jwtauth app through falcon's TestClient, so no process is started here (tests/interop/
test_mcp_sdk.py runs them for real, driven by the MCP SDK's own OAuth client).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import pytest
from falcon import testing

from examples import resource_server
from tests.dpopkit import DPoPKey
from tests.helpers import ISSUER, basic
from tests.support import need

API = "https://api.example.com"


def routed_fetch(auth: testing.TestClient) -> Any:
    """Return a verifier fetch that reads the issuer's documents from the in-process app."""

    def fetch(url: str) -> tuple[bytes, Mapping[str, str]]:
        assert url.startswith(ISSUER), url
        result = auth.simulate_get(urlsplit(url).path)
        assert result.status_code == 200, result.text
        return result.content, dict(result.headers)

    return fetch


def client_credentials(auth: testing.TestClient, resource: str, scope: str = "read") -> str:
    form = f"grant_type=client_credentials&scope={scope}&resource={resource}"
    result = auth.simulate_post("/api/v1/tokens", body=form, headers=basic())
    assert result.status_code == 200, result.text
    token: str = result.json["access_token"]
    return token


@pytest.fixture
def api(client: testing.TestClient) -> testing.TestClient:
    return testing.TestClient(resource_server.build_app(ISSUER, API, fetch=routed_fetch(client)))


def test_resource_server_answers_the_tokens_subject(
    client: testing.TestClient, api: testing.TestClient
) -> None:
    token = client_credentials(client, API)
    result = api.simulate_get("/hello", headers={"Authorization": f"Bearer {token}"})
    assert result.status_code == 200, result.text
    assert result.json == {"sub": "testclient", "client_id": "testclient", "scope": "read"}


def test_resource_server_refuses_other_audiences_and_scopes(
    client: testing.TestClient, api: testing.TestClient
) -> None:
    other = client_credentials(client, "https://reports.example.com")
    assert api.simulate_get("/hello", headers={"Authorization": f"Bearer {other}"}).status_code == 401
    write_only = client_credentials(client, API, "write")
    assert api.simulate_get("/hello", headers={"Authorization": f"Bearer {write_only}"}).status_code == 403


def test_resource_server_publishes_its_metadata(api: testing.TestClient) -> None:
    metadata = api.simulate_get("/.well-known/oauth-protected-resource").json
    assert metadata["resource"] == API and metadata["authorization_servers"] == [ISSUER]
    assert metadata["scopes_supported"] == ["read"]
    challenge = api.simulate_get("/hello").headers["WWW-Authenticate"]
    assert f'resource_metadata="{API}/.well-known/oauth-protected-resource"' in challenge


def dpop_token(auth: testing.TestClient, key: DPoPKey) -> str:
    form = f"grant_type=client_credentials&scope=read&resource={API}"
    result = auth.simulate_post("/api/v1/tokens", body=form, headers={**basic(), "DPoP": key.proof()})
    assert result.status_code == 200 and result.json["token_type"] == "DPoP", result.text
    token: str = result.json["access_token"]
    return token


def dpop_get(api: testing.TestClient, key: DPoPKey, token: str) -> testing.Result:
    # falcon's TestClient calls http://falconframework.org: the URL the proof must name.
    proof = key.proof(htm="GET", htu="http://falconframework.org/hello", token=token)
    return api.simulate_get("/hello", headers={"Authorization": f"DPoP {token}", "DPoP": proof})


def test_resource_server_takes_dpop_and_bearer_by_default(
    client: testing.TestClient, api: testing.TestClient
) -> None:
    key = DPoPKey()
    token = dpop_token(client, key)
    result = dpop_get(api, key, token)
    assert result.status_code == 200, result.text
    expected = {"sub": "testclient", "client_id": "testclient", "scope": "read", "dpop_jkt": key.jkt}
    assert result.json == expected
    assert api.simulate_get("/hello", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    metadata = api.simulate_get("/.well-known/oauth-protected-resource").json
    assert metadata["dpop_bound_access_tokens_required"] is False
    assert "ES256" in metadata["dpop_signing_alg_values_supported"]
    assert api.simulate_get("/hello").headers["WWW-Authenticate"].startswith('DPoP algs="')


@pytest.mark.parametrize(
    ("flag", "bearer", "dpop", "required"),
    [("--require-dpop", 401, 200, True), ("--no-dpop", 200, 401, None)],
)
def test_resource_server_flags(
    client: testing.TestClient, flag: str, bearer: int, dpop: int, required: bool | None
) -> None:
    options = resource_server.dpop_options(flag == "--require-dpop", flag == "--no-dpop", None)
    api = testing.TestClient(resource_server.build_app(ISSUER, API, fetch=routed_fetch(client), dpop=options))
    key, plain = DPoPKey(), client_credentials(client, API)
    assert api.simulate_get("/hello", headers={"Authorization": f"Bearer {plain}"}).status_code == bearer
    assert dpop_get(api, key, dpop_token(client, key)).status_code == dpop
    metadata = api.simulate_get("/.well-known/oauth-protected-resource").json
    assert metadata.get("dpop_bound_access_tokens_required") is required


def _asgi_get(app: Any, path: str, headers: Mapping[str, str]) -> tuple[int, dict[bytes, bytes], bytes]:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "scheme": "http",
        "server": ("127.0.0.1", 8002),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]


def test_mcp_server_publishes_its_metadata_and_refuses_other_tokens(client: testing.TestClient) -> None:
    need(importlib.util.find_spec("mcp") is not None, "the examples extra: pip install -e '.[examples]'")
    from examples import mcp_server

    resource = "http://127.0.0.1:8002/mcp"
    app = mcp_server.build_app(ISSUER, resource, fetch=routed_fetch(client))
    status, _, body = _asgi_get(app, "/.well-known/oauth-protected-resource/mcp", {})
    assert status == 200 and json.loads(body)["resource"] == resource
    other = client_credentials(client, API)
    status, headers, _ = _asgi_get(app, "/mcp", {"Authorization": f"Bearer {other}"})
    assert status == 401
    assert b'resource_metadata="http://127.0.0.1:8002/.well-known/oauth-protected-resource/mcp"' in (
        headers[b"www-authenticate"]
    )


def test_resource_server_public_url_is_what_proofs_name(client: testing.TestClient) -> None:
    options = resource_server.dpop_options(require=False, off=False, public_url="https://api.example.com/")
    api = testing.TestClient(resource_server.build_app(ISSUER, API, fetch=routed_fetch(client), dpop=options))
    key = DPoPKey()
    token = dpop_token(client, key)
    assert dpop_get(api, key, token).status_code == 401  # names the URL the proxy received
    proof = key.proof(htm="GET", htu="https://api.example.com/hello", token=token)
    result = api.simulate_get("/hello", headers={"Authorization": f"DPoP {token}", "DPoP": proof})
    assert result.status_code == 200, result.text
