"""The official MCP SDK's own OAuth client, unmodified, against examples/mcp_server.py and jwtauth.

The whole dance an AI agent does: call the MCP server, get 401 with `resource_metadata`, read the
protected-resource metadata (RFC 9728), then the authorization server's metadata (RFC 8414),
send the user to the sign-in page with PKCE and `resource` (RFC 8707), receive the code on a
loopback listener on a random port (RFC 8252 §7.3), exchange it, and call the `whoami` tool,
which answers the user. The person at the keyboard is an HTTP form client (tests/interop/
useragent.py); everything the OAuth client does is the SDK's.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from jwtauth.cli import keyfolder
from tests.docserver import DocServer, client_document, doc_server, loopback_tls
from tests.helpers import ROOT
from tests.interop.useragent import sign_in_and_allow
from tests.support import Server, free_port, need, running_server

pytestmark = pytest.mark.e2e

USER_HASH = 'scrypt$ln=15,r=8,p=1$lgslsQzt2yW-tW3oDCN5mw$CfaOMg6UdDB6LCjIuQ8IfAPGSI18zbhG0lXFl_4V7AM'
SECRET_HASH = 'scrypt$ln=15,r=8,p=1$f47Wn4iRWs5go498j_TpwQ$wrDwRrHlILVUJQqHeDsnUB1LvzVqXy5rh8PhutaduvY'


def _config(resource: str) -> str:
    """Return a settings file: documents from loopback, a native client, the demo user and client."""
    return f"""
[client_id_metadata]
enabled = true
allowed_hosts = ["127.0.0.1"]
scopes = ["read"]
audiences = ["{resource}"]
allow_insecure_loopback = true  # the document is served on 127.0.0.1 by this test

[[clients]]
id = "mcp-cli"
name = "MCP command line"
public = true
grant_types = ["authorization_code", "refresh_token"]
redirect_uris = ["http://127.0.0.1/callback"]
scopes = ["read"]
default_scope = "read"
audiences = ["{resource}"]

[[clients]]
id = "testclient"
secret_hash = "{SECRET_HASH}"
grant_types = ["client_credentials"]
scopes = ["read"]
audiences = ["https://api.example.com", "{resource}"]

[[users]]
username = "testuser@example.com"
password_hash = "{USER_HASH}"
"""


@contextlib.contextmanager
def _process(args: list[str], log: Path, ready: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run a Python script until `ready` (a URL) answers; stop it afterwards."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, *args], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(requests.RequestException):
                requests.get(ready, timeout=1)
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{args[0]} did not start:\n{log.read_text()}")
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


@dataclass
class Stack:
    server: Server
    mcp_url: str
    docs: DocServer


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Run a client's document server (https on 127.0.0.1), `jwtauth serve` and examples/mcp_server.py.

    The SDK accepts only https client_metadata_url values, so the document is served over TLS
    with a certificate made here, which `jwtauth serve` trusts through SSL_CERT_FILE.
    """
    need(importlib.util.find_spec("mcp") is not None, "the examples extra: pip install -e '.[examples]'")
    directory = tmp_path_factory.mktemp("mcp")
    keyfolder.ensure(directory / "keys", "ES256", now=time.time(), retire_after=960)
    port = free_port()
    mcp_url = f"http://127.0.0.1:{port}/mcp"
    config = directory / "settings.toml"
    config.write_text(_config(mcp_url))
    tls, cert = loopback_tls(directory)
    env = {"SSL_CERT_FILE": str(cert)}
    with (
        doc_server(tls) as docs,
        running_server(keys_dir=directory / "keys", config=config, log_dir=directory, env=env) as server,
    ):
        script = ["examples/mcp_server.py", "--issuer", server.base, "--port", str(port)]
        with _process(script, directory / "mcp.log", mcp_url):
            yield Stack(server, mcp_url, docs)


class _Loopback:
    """The native app's redirect listener: http://127.0.0.1:<ephemeral port>/callback."""

    def __init__(self) -> None:
        received: list[dict[str, list[str]]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                received.append(parse_qs(urlsplit(self.path).query))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"You can close this window.")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # the OS picks the port
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def _whoami(mcp_url: str, client_id: str, loopback: _Loopback, **provider_options: Any) -> Any:
    """Connect with the SDK's OAuth client, sign in when asked, call whoami, return its result."""
    import httpx2
    from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
    from mcp.client.client import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

    class Storage:  # the SDK's TokenStorage protocol, in memory; client_id is the app's own
        def __init__(self) -> None:
            self.tokens: OAuthToken | None = None
            self.info: OAuthClientInformationFull | None = None
            if client_id:
                self.info = OAuthClientInformationFull(
                    client_id=client_id, redirect_uris=[loopback.uri], token_endpoint_auth_method="none"
                )

        async def get_tokens(self) -> OAuthToken | None:
            return self.tokens

        async def set_tokens(self, tokens: OAuthToken) -> None:
            self.tokens = tokens

        async def get_client_info(self) -> OAuthClientInformationFull | None:
            return self.info

        async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
            self.info = client_info

    async def open_browser(url: str) -> None:
        opened.append(url)
        callback = await asyncio.to_thread(sign_in_and_allow, url)
        await asyncio.to_thread(requests.get, callback, timeout=5)  # the browser follows the 303

    async def wait_for_callback() -> AuthorizationCodeResult:
        query = loopback.received[-1]
        return AuthorizationCodeResult(code=query["code"][0], state=query["state"][0], iss=query["iss"][0])

    opened: list[str] = []
    metadata = OAuthClientMetadata(
        client_name="jwtauth interop test",
        redirect_uris=[loopback.uri],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    storage = Storage()
    provider = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=metadata,
        storage=storage,
        redirect_handler=open_browser,
        callback_handler=wait_for_callback,
        **provider_options,
    )
    async with (
        httpx2.AsyncClient(auth=provider, timeout=10) as http,
        Client(streamable_http_client(mcp_url, http_client=http)) as client,
    ):
        result = await client.call_tool("whoami", {})
    return result, opened, storage


def test_a_client_id_metadata_document_on_loopback_signs_in(stack: Stack) -> None:
    """The SDK's CIMD path: no registration, the client_id is the document's URL."""
    url = stack.docs.document("/agent/client.json", client_document(stack.docs.base + "/agent/client.json"))
    loopback = _Loopback()
    try:
        result, opened, _ = asyncio.run(_whoami(stack.mcp_url, "", loopback, client_metadata_url=url))
    finally:
        loopback.close()
    assert not result.is_error, result
    assert result.structured_content == {"sub": "testuser@example.com", "client_id": url, "scope": "read"}
    query = parse_qs(urlsplit(opened[0]).query)
    assert query["client_id"] == [url] and query["resource"] == [stack.mcp_url]
    assert stack.docs.hits["/agent/client.json"] == 1  # authorize page, POST and token: one fetch


def test_a_pre_registered_native_client_signs_in_on_a_random_loopback_port(stack: Stack) -> None:
    server, mcp_url = stack.server, stack.mcp_url
    loopback = _Loopback()
    try:
        result, opened, storage = asyncio.run(_whoami(mcp_url, "mcp-cli", loopback))
    finally:
        loopback.close()
    assert not result.is_error, result
    user = {"sub": "testuser@example.com", "client_id": "mcp-cli", "scope": "read"}
    assert result.structured_content == user
    (url,) = opened
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(server.base + "/authorize?")
    assert query["resource"] == [mcp_url] and query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [loopback.uri] and ":" in urlsplit(loopback.uri).netloc
    assert storage.tokens is not None and storage.tokens.refresh_token


def test_a_token_for_another_resource_is_refused_by_the_mcp_server(stack: Stack) -> None:
    server, mcp_url = stack.server, stack.mcp_url
    form = {"grant_type": "client_credentials", "scope": "read"}
    auth = ("testclient", "testpassword")
    tokens = server.base + "/api/v1/tokens"
    other = requests.post(tokens, data={**form, "resource": "https://api.example.com"}, auth=auth, timeout=5)
    mine = requests.post(tokens, data={**form, "resource": mcp_url}, auth=auth, timeout=5)
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for token, expected in ((other.json()["access_token"], 401), (mine.json()["access_token"], None)):
        answer = requests.post(
            mcp_url,
            json=call,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"},
            timeout=5,
        )
        if expected:
            assert answer.status_code == expected, answer.text
            assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
            assert "resource_metadata=" in answer.headers["WWW-Authenticate"]
        else:  # the same client, the right audience: past the guard (MCP itself may want a session)
            assert answer.status_code in (200, 400) and "WWW-Authenticate" not in answer.headers, answer.text
