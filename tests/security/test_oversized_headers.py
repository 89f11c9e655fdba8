"""Issue 18, item 4: oversized request headers are refused, never served.

A token request with a 64 KB `Cookie` got a token: every header byte is memory and parsing an
attacker chooses. The serving layer caps the request head (granian's HTTP/1 buffer) and the app
refuses a head above the same cap with 431 (RFC 6585 §5), so the cap holds under any WSGI server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import falcon
import pytest
import requests
from falcon import testing

from jwtauth.resources.header_limit import MAX_HEADER_BYTES
from tests.helpers import DEMO, TOKENS, basic

GRANT = "grant_type=client_credentials"
FORM = "application/x-www-form-urlencoded"


def test_the_app_refuses_a_64_kb_cookie(http: testing.TestClient) -> None:
    headers = {**basic(*DEMO), "Cookie": "a=" + "x" * 65536}
    result = http.simulate_post(TOKENS, body=GRANT, headers=headers)
    assert result.status_code == 431
    assert "access_token" not in result.text
    assert result.headers["Cache-Control"] == "no-store"


def test_many_small_headers_add_up(http: testing.TestClient) -> None:
    headers = {**basic(*DEMO), **{f"X-Pad-{i}": "y" * 200 for i in range(100)}}
    assert http.simulate_post(TOKENS, body=GRANT, headers=headers).status_code == 431


def test_ordinary_headers_pass(http: testing.TestClient) -> None:
    headers = {**basic(*DEMO), "Cookie": "a=" + "x" * 4000, "User-Agent": "u" * 500}
    assert http.simulate_post(TOKENS, body=GRANT, headers=headers).status_code == 200


def test_the_cap_leaves_room_for_real_browsers() -> None:
    assert 8192 <= MAX_HEADER_BYTES <= 32768


@pytest.mark.e2e
def test_a_real_server_refuses_a_64_kb_cookie(serve: Callable[..., Any]) -> None:
    with serve() as server:
        url = server.base + TOKENS
        ok = requests.post(url, data=GRANT, headers=basic(*DEMO), timeout=10)
        assert ok.status_code == 200
        # Just under granian's buffer, the app's own cap answers.
        near = {**basic(*DEMO), "Cookie": "a=" + "x" * (MAX_HEADER_BYTES + 100)}
        assert requests.post(url, data=GRANT, headers=near, timeout=10).status_code == 431
        huge = {**basic(*DEMO), "Cookie": "a=" + "x" * 65536}
        try:
            big = requests.post(url, data=GRANT, headers=huge, timeout=10)
        except requests.ConnectionError:
            return  # the server closed the connection on the oversized head: not served either
        assert big.status_code in (400, 431) and "access_token" not in big.text


def test_the_cap_counts_every_byte_of_names_values_and_separators(http: testing.TestClient) -> None:
    def sent(pad: int) -> int:
        headers = {**basic(*DEMO), "Content-Type": FORM, "X-Pad": "y" * pad}
        return http.simulate_post(TOKENS, body=GRANT, headers=headers).status_code

    # What Falcon's header view of this request adds up to, without X-Pad: then fill to the cap.
    head = {**basic(*DEMO), "Content-Type": FORM}
    probe = testing.create_environ(TOKENS, method="POST", body=GRANT, headers=head)
    base = sum(len(name) + len(value) + 4 for name, value in falcon.Request(probe).headers.items())
    room = MAX_HEADER_BYTES - base - len("X-Pad") - 4
    assert sent(room) == 200
    assert sent(room + 1) == 431
