"""Loopback redirect URIs (RFC 8252 §7.3, §8.3; RFC 9700 §2.1, §4.1.3): any port, nothing else.

The whole redirect-URI bypass suite runs again against a client registered on the loopback
literals, where the matcher's one loosening lives: a different port is accepted, every other
change is an error page that redirects nowhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from falcon import testing

from tests.authflow import authorize, code_from, open_page, redirect_params, submit
from tests.helpers import SPA, assert_clean_error, pkce_pair, token
from tests.security.test_authorize_endpoint import BYPASSES, assert_error_page, codes_in

NATIVE = "native"
V4, V6 = "http://127.0.0.1/cb", "http://[::1]/cb"


@pytest.fixture
def native_http(make_app: Callable[..., testing.TestClient], sec_settings: Any) -> testing.TestClient:
    spa = next(c for c in sec_settings.clients if c.client_id == SPA)  # public, PKCE
    native = dataclasses.replace(spa, client_id=NATIVE, name=NATIVE, redirect_uris=(V4, V6))
    localhost = dataclasses.replace(
        native, client_id="tool", redirect_uris=("http://localhost/cb",), allow_localhost=True
    )
    return make_app(clients=(*sec_settings.clients, native, localhost))


def _query(uri: str, client_id: str = NATIVE, **extra: str) -> dict[str, str]:
    _, challenge = pkce_pair()
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": uri,
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


# Every bypass of the exact-match suite, moved onto the loopback registration (`http://127.0.0.1`
# stands where `https://www.example.com` stood, with a port, so only the port-free rule is left
# to abuse), plus the spellings of loopback that are not the registered literal.
LOOPBACK_BYPASSES = sorted(
    {u.replace("https://www.example.com", "http://127.0.0.1:4711/cb") for u in BYPASSES}
    | {
        "http://127.0.0.1:4711/cb/",
        "http://127.0.0.1:4711/CB",
        "http://127.0.0.1:4711/cb?x=1",
        "http://127.0.0.1:4711/cb#x",
        "http://127.0.0.1:4711/cb/../cb",
        "http://127.0.0.1:4711/%63b",
        "http://127.0.0.1:0/cb",
        "http://127.0.0.1:04711/cb",
        "http://127.0.0.1:65536/cb",
        "http://127.0.0.1:99999999999999999999/cb",
        "http://127.0.0.1:/cb",
        "http://127.0.0.1:4711:80/cb",
        "http://127.0.0.1:4711@evil.example/cb",
        "http://evil.example@127.0.0.1:4711/cb",
        "http://127.0.0.1.evil.example:4711/cb",
        "http://127.0.0.1.nip.io/cb",
        "https://127.0.0.1:4711/cb",
        "HTTP://127.0.0.1:4711/cb",
        "http://127.1:4711/cb",
        "http://127.0.0.2:4711/cb",
        "http://0x7f000001:4711/cb",
        "http://2130706433:4711/cb",
        "http://0177.0.0.1:4711/cb",
        "http://[0:0:0:0:0:0:0:1]:4711/cb",
        "http://[::ffff:127.0.0.1]:4711/cb",
        "http://[::1%25lo]:4711/cb",
        "http://localhost:4711/cb",
        "http://localhost/cb",
        "http://127.0.0.1:4711/cb\\@evil.example",
        "http://127.0.0.1:\uff14\uff17\uff11\uff11/cb",  # fullwidth digits
    }
)


@pytest.mark.parametrize("uri", LOOPBACK_BYPASSES)
def test_no_bypass_of_the_loopback_rule_gets_a_redirect(
    native_http: testing.TestClient, state: Any, uri: str
) -> None:
    before = state()
    page = open_page(native_http, _query(uri))
    assert_error_page(page.result)
    # Nor a POST that swaps the bypass into a good form.
    good = open_page(native_http, _query("http://127.0.0.1:4711/cb"))
    assert good.result.status_code == 200, good.result.text
    result = submit(native_http, good, changes={"redirect_uri": uri})
    assert result.status_code == 400 and "Location" not in result.headers, result.text
    assert codes_in(state()) == codes_in(before) == []


@pytest.mark.parametrize(
    "uri",
    ["http://127.0.0.1/cb", "http://127.0.0.1:1/cb", "http://127.0.0.1:51004/cb", "http://[::1]:65535/cb"],
)
def test_any_port_on_a_registered_loopback_literal_gets_the_code_there(
    native_http: testing.TestClient, uri: str
) -> None:
    result = authorize(native_http, _query(uri))
    assert result.status_code == 303, result.text
    location = result.headers["Location"]
    assert location.startswith(uri + "?") and "code" in redirect_params(location)


def test_the_code_is_redeemable_only_with_the_port_it_went_to(native_http: testing.TestClient) -> None:
    verifier, challenge = pkce_pair()
    uri = "http://127.0.0.1:50123/cb"
    query = {**_query(uri), "code_challenge": challenge}
    code = code_from(authorize(native_http, query))
    exchange = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    for other in ("http://127.0.0.1:50124/cb", "http://127.0.0.1/cb", V4):
        refused = token(native_http, {**exchange, "redirect_uri": other}, auth=NATIVE)
        assert_clean_error(refused, 400, "invalid_grant")
    # The refusals burnt nothing: the right URI still redeems the code.
    assert token(native_http, {**exchange, "redirect_uri": uri}, auth=NATIVE).status_code == 200


def test_localhost_is_port_free_only_for_the_client_that_opted_in(native_http: testing.TestClient) -> None:
    assert authorize(native_http, _query("http://localhost:4711/cb", "tool")).status_code == 303
    assert_error_page(open_page(native_http, _query("http://localhost.evil.example:4711/cb", "tool")).result)
    assert_error_page(open_page(native_http, _query("http://127.0.0.1:4711/cb", "tool")).result)


def test_other_clients_keep_exact_matching_of_their_ports(make_app: Any, sec_settings: Any) -> None:
    spa = next(c for c in sec_settings.clients if c.client_id == SPA)
    https_loopback = dataclasses.replace(spa, client_id="tls", redirect_uris=("https://127.0.0.1/cb",))
    http = make_app(clients=(*sec_settings.clients, https_loopback))
    assert_error_page(open_page(http, _query("https://127.0.0.1:8443/cb", "tls")).result)
