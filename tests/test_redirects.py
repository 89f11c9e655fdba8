"""jwtauth.oauth.redirects: exact matching, and any port on a loopback IP literal (RFC 8252 §7.3)."""

from __future__ import annotations

import pytest

from jwtauth.oauth.redirects import find, matches, same_as_authorization


@pytest.mark.parametrize(
    ("registered", "sent"),
    [
        ("http://127.0.0.1/cb", "http://127.0.0.1/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:1/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:51004/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:65535/cb"),
        ("http://127.0.0.1:8080/cb", "http://127.0.0.1:9090/cb"),
        ("http://127.0.0.1:8080/cb", "http://127.0.0.1/cb"),
        ("http://[::1]/cb", "http://[::1]:4711/cb"),
        ("http://127.0.0.1/cb?x=1", "http://127.0.0.1:4711/cb?x=1"),
        ("http://127.0.0.1", "http://127.0.0.1:4711"),
        ("http://127.0.0.1/", "http://127.0.0.1:4711/"),
        ("https://app.example.com/cb", "https://app.example.com/cb"),
        ("com.example.app:/cb", "com.example.app:/cb"),
    ],
)
def test_matches(registered: str, sent: str) -> None:
    assert matches(registered, sent)


@pytest.mark.parametrize(
    ("registered", "sent"),
    [
        ("http://127.0.0.1/cb", "http://127.0.0.1:0/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:65536/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:080/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:+80/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:8 0/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:\uff18\uff10/cb"),  # fullwidth digits
        ("http://127.0.0.1/cb", "http://127.0.0.1:80:81/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:80@evil.example/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1.evil.example/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1.nip.io:80/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:80/cb/"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:80/CB"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:80/cb?x=1"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:80/cb#x"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:80/cb/../cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:80\\@evil.example/cb"),
        ("http://127.0.0.1/cb", "https://127.0.0.1:80/cb"),
        ("http://127.0.0.1/cb", "HTTP://127.0.0.1:80/cb"),
        ("http://127.0.0.1/cb", "http://127.1:80/cb"),
        ("http://127.0.0.1/cb", "http://0x7f000001:80/cb"),
        ("http://127.0.0.1/cb", "http://2130706433:80/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.2:80/cb"),
        ("http://127.0.0.1/cb", "http://[::1]:80/cb"),
        ("http://127.0.0.1/cb", "http://[::ffff:127.0.0.1]:80/cb"),
        ("http://127.0.0.1/cb", "http://localhost:80/cb"),
        ("http://127.0.0.1/cb", "http://evil@127.0.0.1:80/cb"),
        ("http://[::1]/cb", "http://[0:0:0:0:0:0:0:1]:80/cb"),
        ("http://[::1]/cb", "http://[::1%25lo]:80/cb"),
        ("http://[::1]/cb", "http://127.0.0.1:80/cb"),
        ("http://localhost/cb", "http://localhost:80/cb"),  # localhost: exact unless opted in
        ("https://127.0.0.1/cb", "https://127.0.0.1:8443/cb"),  # https loopback: exact
        ("https://app.example.com/cb", "https://app.example.com:443/cb"),
        ("http://127.0.0.1/cb", " http://127.0.0.1:80/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:80/cb\r\n"),
    ],
)
def test_does_not_match(registered: str, sent: str) -> None:
    assert not matches(registered, sent)


def test_localhost_matches_on_any_port_only_when_the_client_opts_in() -> None:
    assert matches("http://localhost/cb", "http://localhost:4711/cb", allow_localhost=True)
    assert not matches("http://localhost/cb", "http://localhost.evil.example/cb", allow_localhost=True)
    assert not matches("http://localhost/cb", "http://LOCALHOST:4711/cb", allow_localhost=True)
    assert not matches("http://localhost/cb", "http://localhost:4711/cb")
    # Opting in to localhost does not mix host spellings.
    assert not matches("http://127.0.0.1/cb", "http://localhost:4711/cb", allow_localhost=True)


def test_find_returns_the_sent_uri_with_its_port() -> None:
    registered = ("https://app.example.com/cb", "http://127.0.0.1/cb")
    assert find(registered, "http://127.0.0.1:5000/cb") == "http://127.0.0.1:5000/cb"
    assert find(registered, "http://127.0.0.1:5000/other") is None


def test_the_token_request_must_repeat_the_port_the_code_went_to() -> None:
    assert same_as_authorization("http://127.0.0.1:5000/cb", "http://127.0.0.1:5000/cb")
    assert not same_as_authorization("http://127.0.0.1:5000/cb", "http://127.0.0.1:5001/cb")
    assert not same_as_authorization("http://127.0.0.1:5000/cb", "http://127.0.0.1/cb")
