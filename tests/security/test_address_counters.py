"""Issue 18, item 3: IPv6 rotation, proxy ports and IPv4-mapped peers cannot void the address counters.

An IPv6 client owns at least a /64, so the counters key IPv6 by /64. A proxy hop written as
`IP:port` (Azure Application Gateway) or `[v6]:port` counts as its address. A peer on a `::`
socket shows as `::ffff:a.b.c.d` and is matched against IPv4 trusted proxies as a.b.c.d.
"""

from __future__ import annotations

from typing import Any

import pytest
from falcon import testing

from jwtauth.config.settings import parse_networks
from jwtauth.resources.client_address import client_address
from tests.helpers import DEMO, TOKENS, VICTIM, VICTIM_PASSWORD, assert_clean_error, call, login

TRUSTED = parse_networks(["10.0.0.0/8"])


def locked(result: testing.Result) -> bool:
    return result.status_code == 429 and assert_clean_error(result, 429, "slow_down") is not None


def test_rotating_through_an_ipv6_64_meets_one_counter(make_app: Any) -> None:
    http = make_app(client_max_failures=5)
    for i in range(5):
        assert login(http, f"u{i}", "x", remote_addr=f"2001:db8:1:2::{i + 1:x}").status_code == 400
    assert locked(login(http, VICTIM, VICTIM_PASSWORD, remote_addr="2001:db8:1:2:ffff::9"))
    assert login(http, VICTIM, VICTIM_PASSWORD, remote_addr="2001:db8:1:3::1").status_code == 200


def test_client_authentication_failures_count_ipv6_by_64(http: testing.TestClient, sec_settings: Any) -> None:
    grant = {"grant_type": "client_credentials"}
    for i in range(sec_settings.client_auth_failures):  # a fresh client id each time: the address counts
        call(http, TOKENS, grant, auth=(f"nobody{i}", "x"), remote_addr=f"2001:db8::{i + 1:x}")
    result = call(http, TOKENS, grant, auth=("nobody-else", "y"), remote_addr="2001:db8::ab:cd")
    assert_clean_error(result, 429, "slow_down")


@pytest.mark.parametrize(
    ("hop", "expected"),
    [
        ("203.0.113.5:4711", "203.0.113.5"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("203.0.113.5", "203.0.113.5"),
    ],
)
def test_proxy_hops_lose_their_ports(hop: str, expected: str) -> None:
    assert client_address("10.0.0.1", f"198.51.100.1, {hop}", TRUSTED) == expected


def test_a_port_on_a_trusted_hop_does_not_hide_it() -> None:
    assert client_address("10.0.0.1", "203.0.113.5, 10.0.0.2:8080", TRUSTED) == "203.0.113.5"


def test_an_ipv4_mapped_peer_is_matched_against_ipv4_proxies() -> None:
    assert client_address("::ffff:10.0.0.1", "203.0.113.5", TRUSTED) == "203.0.113.5"


def test_guesses_through_a_port_rewriting_proxy_meet_one_counter(make_app: Any) -> None:
    http = make_app(client_max_failures=5, trusted_proxies=("10.0.0.0/8",))
    for i in range(5):
        hop = {"X-Forwarded-For": f"203.0.113.5:{4000 + i}"}
        body = {"grant_type": "password", "username": f"u{i}", "password": "x"}
        assert call(http, TOKENS, body, auth=DEMO, headers=hop, remote_addr="10.0.0.1").status_code == 400
    body = {"grant_type": "password", "username": VICTIM, "password": VICTIM_PASSWORD}
    hop = {"X-Forwarded-For": "203.0.113.5:5000"}
    assert locked(call(http, TOKENS, body, auth=DEMO, headers=hop, remote_addr="::ffff:10.0.0.1"))
