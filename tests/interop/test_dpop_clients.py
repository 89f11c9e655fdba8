"""DPoP with unmodified third-party clients: requests-oauth2client (PyPI) and oauth4webapi (npm).

Each gets a DPoP-bound client_credentials token from a real `jwtauth serve` and presents it to
examples/resource_server.py (its app on a thread, on loopback), guarded by jwtauth.verify's RFC 9728
middleware: once as the example starts by default (DPoP and Bearer), once DPoP-only with nonces.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import falcon
import pytest
import requests
from requests_oauth2client import DPoPKey, DPoPToken, OAuth2Client

from examples import resource_server
from jwtauth.verify import DPoPOptions, NonceSource
from tests.support import need

pytestmark = pytest.mark.e2e

NODE = Path(__file__).parent / "node"
API = "https://api.example.com"  # the demo fixtures' default audience


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(app: falcon.App[Any, Any]) -> Iterator[str]:
    httpd = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module", params=["default", "required with nonces"])
def resource(request: pytest.FixtureRequest, base: str) -> Iterator[str]:
    """Yield the URL of GET /hello on examples/resource_server.py, verifying with jwtauth.verify."""
    if request.param == "default":  # what `examples/resource_server.py` runs without flags
        dpop = resource_server.dpop_options(require=False, off=False, public_url=None)
    else:
        dpop = DPoPOptions(allow_bearer=False, nonces=NonceSource(lambda: [b"test resource server"]))
    app = resource_server.build_app(base, API, "read", dpop=dpop)
    for url in _serve(app):
        yield url + "/hello"


def test_requests_oauth2client(metadata: dict[str, Any], resource: str) -> None:
    client = OAuth2Client(
        token_endpoint=metadata["token_endpoint"], client_id="testclient", client_secret="testpassword",
        dpop_bound_access_tokens=True,
        testing=True,  # the library's own switch for a plain-http server on loopback; nothing else changes
    )
    key = DPoPKey.generate(alg="ES256")
    token = client.client_credentials(scope="read", dpop_key=key)
    assert isinstance(token, DPoPToken) and token.token_type.lower() == "dpop"
    first = requests.get(resource, auth=token, timeout=5)
    if first.status_code == 401 and "DPoP-Nonce" in first.headers:
        first = requests.get(resource, auth=token, timeout=5)  # the library kept the nonce
    assert first.status_code == 200, first.text
    assert first.json()["dpop_jkt"] == key.private_key.public_jwk().thumbprint()
    assert first.json()["sub"] == "testclient"
    # The same token as a bearer token is a downgrade the resource server refuses (RFC 9449 §7.2).
    bearer = requests.get(resource, headers={"Authorization": f"Bearer {token.access_token}"}, timeout=5)
    assert bearer.status_code == 401
    assert 'DPoP algs="' in bearer.headers["WWW-Authenticate"]
    assert "resource_metadata=" in bearer.headers["WWW-Authenticate"]


def test_oauth4webapi(base: str, resource: str) -> None:
    node = shutil.which("node")
    need(node is not None and (NODE / "node_modules" / "oauth4webapi").is_dir(), "make node-deps first")
    assert node is not None
    run = subprocess.run(
        [node, str(NODE / "dpop_client.mjs"), base, resource],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["token_type"] == "dpop" and out["status"] == 200, out
    assert out["body"]["sub"] == "testclient" and out["body"]["dpop_jkt"]
