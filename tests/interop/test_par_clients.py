"""PAR + private_key_jwt with unmodified third-party clients and a real Chromium on the sign-in page.

requests-oauth2client (PyPI) and oauth4webapi (npm) each push an authorization request signed in
with their own client key (RFC 9126, RFC 7523), send Debian's Chromium to the authorization URL
they built, and redeem the code with DPoP (RFC 9449): the whole FAPI 2.0 flow of a `fapi2` client
on a real `jwtauth serve`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import get_default_algorithms
from playwright.sync_api import Page
from requests_oauth2client import DPoPKey, DPoPToken, OAuth2Client, PrivateKeyJwt

from jwtauth.cli import keyfolder
from jwtauth.cli.config_edit import render_table
from tests.helpers import FIXTURES, PASSWORD, USER
from tests.support import Server, need, running_server

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

NODE = Path(__file__).parent / "node"
REDIRECT = "https://rp.example.com/cb"  # not on the network: the callback is read from the 303
CLIENTS = ("bank-python", "bank-node")


def client_key(kid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (private JWK, public JWK) of a fresh ES256 key."""
    private = get_default_algorithms()["ES256"].to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True)
    private |= {"kid": kid, "alg": "ES256"}
    public = {k: v for k, v in private.items() if k != "d"}
    return private, public


@pytest.fixture(scope="module")
def keys() -> dict[str, dict[str, Any]]:
    return {client_id: client_key(f"{client_id}-1")[0] for client_id in CLIENTS}


@pytest.fixture(scope="module")
def fapi_server(
    tmp_path_factory: pytest.TempPathFactory, keys: dict[str, dict[str, Any]]
) -> Iterator[Server]:
    """Serve the demo fixtures plus one fapi2 client per library, registered by public key only."""
    folder = tmp_path_factory.mktemp("par")
    config = folder / "settings.toml"
    text = FIXTURES.read_text()
    for client_id, private in keys.items():
        public = {k: v for k, v in private.items() if k != "d"}
        fields = {
            "id": client_id,
            "jwks": {"keys": [public]},
            "profile": "fapi2",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": [REDIRECT],
            "scopes": ["read"],
        }
        text += "\n" + render_table("clients", fields)
    config.write_text(text)
    keyfolder.ensure(folder / "keys", "ES256", now=time.time(), retire_after=960)
    with running_server(keys_dir=folder / "keys", config=config, log_dir=folder) as running:
        yield running


def sign_in(page: Page, authorization_url: str) -> str:
    """Sign in and allow in Chromium; return the callback URL the browser set off to."""
    response = page.goto(authorization_url)
    assert response is not None and response.status == 200, response and response.text()
    page.get_by_label("Email or username").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    with (
        page.expect_response(lambda r: r.request.method == "POST") as posted,
        page.expect_request(lambda r: r.url.startswith(REDIRECT)) as followed,
    ):
        page.get_by_role("button", name="Allow").click()
    assert posted.value.status == 303
    callback = posted.value.headers["location"]
    assert followed.value.url == callback
    return callback


def test_requests_oauth2client(page: Page, fapi_server: Server, keys: dict[str, dict[str, Any]]) -> None:
    issuer = fapi_server.base
    meta = requests.get(issuer + "/.well-known/oauth-authorization-server", timeout=5).json()
    client = OAuth2Client(
        token_endpoint=meta["token_endpoint"],
        authorization_endpoint=meta["authorization_endpoint"],
        pushed_authorization_request_endpoint=meta["pushed_authorization_request_endpoint"],
        issuer=issuer,
        redirect_uri=REDIRECT,
        # aud=issuer: the library defaults to the endpoint URL; RFC 7523bis and FAPI 2.0 want the issuer.
        auth=PrivateKeyJwt("bank-python", keys["bank-python"], aud=issuer),
        code_challenge_method="S256",
        testing=True,  # the library's own switch for a plain-http server on loopback
    )
    dpop_key = DPoPKey.generate(alg="ES256")
    request = client.authorization_request(scope="read", dpop_key=dpop_key)
    pushed = client.pushed_authorization_request(request)
    assert "request_uri=urn" in str(pushed.uri) and "scope" not in str(pushed.uri)
    response = request.validate_callback(sign_in(page, str(pushed.uri)))
    token = client.authorization_code(response, dpop_key=dpop_key)
    assert isinstance(token, DPoPToken) and token.scope == "read"
    claims = jwt.decode(token.access_token, options={"verify_signature": False})
    assert claims["client_id"] == "bank-python"
    assert claims["cnf"]["jkt"] == dpop_key.private_key.public_jwk().thumbprint()
    refreshed = client.refresh_token(token)  # a DPoPToken refreshes with its own key
    assert isinstance(refreshed, DPoPToken)


def test_oauth4webapi(page: Page, fapi_server: Server, keys: dict[str, dict[str, Any]]) -> None:
    node = shutil.which("node")
    need(node is not None and (NODE / "node_modules" / "oauth4webapi").is_dir(), "make node-deps first")
    assert node is not None
    argv = [
        node,
        str(NODE / "par_client.mjs"),
        fapi_server.base,
        "bank-node",
        json.dumps(keys["bank-node"]),
        REDIRECT,
    ]
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        first = proc.stdout.readline()
        assert first, proc.stderr.read() if proc.stderr else ""
        started = json.loads(first)
        assert started["expires_in"] == 60
        callback = sign_in(page, started["authorization_url"])
        proc.stdin.write(callback + "\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    done = json.loads(out)
    assert done["token_type"] == "dpop" and done["refreshed_type"] == "dpop" and done["scope"] == "read"
    claims = jwt.decode(done["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == "bank-node" and len(claims["cnf"]["jkt"]) == 43  # oauth4webapi's key
