"""Client addresses: X-Forwarded-For counts only behind configured, trusted proxies."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from falcon import testing

from jwtauth.app import create_app
from jwtauth.config.reader import ConfigError
from jwtauth.config.settings import Settings, parse_networks, parse_settings
from jwtauth.keys import KeyRing
from jwtauth.resources.client_address import client_address
from tests.helpers import basic

LB = parse_networks(["10.0.0.0/8", "::1"])


@pytest.mark.parametrize(
    ("remote", "header", "expected"),
    [
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # untrusted peer: header ignored
        ("10.0.0.2", None, "10.0.0.2"),
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "1.1.1.1, 198.51.100.1, 10.0.0.7", "198.51.100.1"),  # spoofed left part
        ("10.0.0.2", "10.0.0.5, 10.0.0.7", "10.0.0.5"),  # all trusted: the leftmost
        ("::1", "2001:db8::5", "2001:db8::5"),
        ("10.0.0.2", "not-an-ip, 198.51.100.1", "198.51.100.1"),
    ],
)
def test_client_address_walks_from_the_right(remote: str, header: str | None, expected: str) -> None:
    assert client_address(remote, header, LB) == expected


def test_without_trusted_proxies_the_header_never_counts() -> None:
    assert client_address("10.0.0.2", "198.51.100.1", ()) == "10.0.0.2"


def test_bad_network_in_config_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"f\.toml: limits\.trusted_proxies: 'nope' is not an IP"):
        parse_settings({"limits": {"trusted_proxies": ["nope"]}}, "f.toml", {})


def _lock_out(client: testing.TestClient, forwarded: str) -> int:
    status = 0
    for _ in range(6):
        status = client.simulate_post(
            "/api/v1/tokens",
            body="grant_type=password&username=nobody@example.com&password=wrong",
            headers={**basic(), "X-Forwarded-For": forwarded},
            remote_addr="10.0.0.2",
        ).status_code
    return status


def test_spoofed_header_cannot_escape_the_address_limit(
    settings: Settings, keyring: KeyRing, store: Any
) -> None:
    # No trusted proxy configured: every guess counts against the real peer address (on the
    # password grant, with the client: its limit is set low here).
    client = testing.TestClient(create_app(replace(settings, client_max_failures=5), keyring, store))
    statuses = [
        client.simulate_post(
            "/api/v1/tokens",
            body=f"grant_type=password&username=user{i}@example.com&password=wrong",
            headers={**basic(), "X-Forwarded-For": f"198.51.100.{i}"},
            remote_addr="10.0.0.2",
        ).status_code
        for i in range(7)
    ]
    assert statuses[-1] == 429


def test_behind_a_trusted_proxy_each_client_has_its_own_counter(
    settings: Settings, keyring: KeyRing, store: Any
) -> None:
    trusted = replace(settings, trusted_proxies=("10.0.0.0/8",))
    client = testing.TestClient(create_app(trusted, keyring, store))
    assert _lock_out(client, "198.51.100.1") == 429
    other = client.simulate_post(
        "/api/v1/tokens",
        body="grant_type=password&username=testuser@example.com&password=testpassword",
        headers={**basic(), "X-Forwarded-For": "198.51.100.2"},
        remote_addr="10.0.0.2",
    )
    assert other.status_code == 200, other.text
