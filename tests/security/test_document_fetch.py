"""Fetching client ID metadata documents cannot be turned into SSRF (draft §6.5, RFC 9700 §4.14).

Every address class that is not the public Internet is refused, however the name resolves or
the URL spells it; the checked address is the one connected to (no rebinding); redirects,
oversized, slow, and non-JSON answers are refused.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from jwtauth.accounts.document_fetch import DocumentFetcher, FetchRefused, public_address
from tests.docserver import Answer, DocServer, doc_server

PUBLIC = "93.184.216.34"


@pytest.fixture
def docs() -> Iterator[DocServer]:
    with doc_server() as server:
        yield server


def resolving_to(*addresses: str) -> Any:
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return list(addresses)

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "127.0.0.1",
        "127.8.8.8",
        "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
        "169.254.169.254",  # cloud instance metadata
        "100.64.0.1",  # shared address space (carrier-grade NAT)
        "198.18.0.1",  # benchmarking
        "192.0.0.8",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",  # AWS metadata over IPv6
        "ff02::1",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2001:db8::1",  # documentation
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
    ],
)
def test_every_non_public_address_class_is_refused(address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    connected: list[Any] = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: connected.append(a) or _fail())
    fetcher = DocumentFetcher(resolver=resolving_to(address))
    with pytest.raises(FetchRefused, match="non-public"):
        fetcher.fetch("https://client.example/agent.json")
    assert connected == []  # refused before any connection


def _fail() -> Any:
    raise OSError("no network in this test")


def test_one_private_answer_among_public_ones_is_refused() -> None:
    fetcher = DocumentFetcher(resolver=resolving_to(PUBLIC, "10.0.0.1"))
    with pytest.raises(FetchRefused, match="non-public"):
        fetcher.fetch("https://client.example/agent.json")


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/agent.json",
        "https://[::1]/agent.json",
        "https://169.254.169.254/latest/meta-data",
        "https://2130706433/agent.json",  # 127.0.0.1 as one number
        "https://0x7f000001/agent.json",
        "https://127.1/agent.json",
        "https://017700000001/agent.json",
        "https://localhost/agent.json",
        "https://localhost./agent.json",
    ],
)
def test_loopback_in_any_spelling_is_refused(url: str) -> None:
    with pytest.raises(FetchRefused):
        DocumentFetcher().fetch(url)  # the system resolver reads numeric forms without the network


@pytest.mark.parametrize(
    "url",
    ["http://client.example/agent.json", "ftp://client.example/agent.json", "file:///etc/passwd"],
)
def test_only_https(url: str) -> None:
    with pytest.raises(FetchRefused, match="https"):
        DocumentFetcher(resolver=resolving_to(PUBLIC)).fetch(url)


@pytest.mark.process  # a document server on 127.0.0.1
def test_insecure_loopback_is_refused_unless_enabled(docs: DocServer) -> None:
    url = docs.document("/agent.json")
    with pytest.raises(FetchRefused):
        DocumentFetcher().fetch(url)
    assert DocumentFetcher(allow_insecure_loopback=True).fetch(url).body.startswith(b"{")
    # Enabled, it still admits loopback IP literals only, never a name that resolves there.
    with pytest.raises(FetchRefused):
        DocumentFetcher(allow_insecure_loopback=True).fetch(url.replace("127.0.0.1", "localhost"))


def test_the_checked_address_is_the_one_connected_to(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: a second lookup answering 127.0.0.1 is never made, nor used."""
    answers = iter([[PUBLIC], ["127.0.0.1"]])
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    connected: list[tuple[str, int]] = []

    def connect(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        connected.append(address)
        raise OSError("stop here")

    monkeypatch.setattr(socket, "create_connection", connect)
    with pytest.raises(FetchRefused, match="could not be fetched"):
        DocumentFetcher(resolver=rebinding).fetch("https://client.example/agent.json")
    assert calls == ["client.example"] and connected == [(PUBLIC, 443)]


def loopback_fetcher(**options: Any) -> DocumentFetcher:
    return DocumentFetcher(allow_insecure_loopback=True, **options)


@pytest.mark.process  # a document server on 127.0.0.1
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_not_followed(docs: DocServer, status: int) -> None:
    target = docs.document("/real.json")
    docs.answers["/agent.json"] = Answer(b"", status, {"Location": target})
    with pytest.raises(FetchRefused, match=str(status)):
        loopback_fetcher().fetch(docs.base + "/agent.json")
    assert docs.hits.get("/real.json") is None


@pytest.mark.process  # a document server on 127.0.0.1
@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_documents_are_refused(docs: DocServer, chunked: bool) -> None:
    docs.answers["/big.json"] = Answer(b'{"x": "' + b"a" * 6000 + b'"}', chunked=chunked)
    with pytest.raises(FetchRefused, match="larger"):
        loopback_fetcher().fetch(docs.base + "/big.json")


@pytest.mark.process  # a document server on 127.0.0.1
def test_a_slow_document_is_cut_off(docs: DocServer) -> None:
    docs.answers["/slow.json"] = Answer(b'{"client_id": "x", "padding": "........"}', trickle=0.05)
    started = time.monotonic()
    with pytest.raises(FetchRefused):
        loopback_fetcher(total_timeout=0.3).fetch(docs.base + "/slow.json")
    assert time.monotonic() - started < 1.5


@pytest.mark.process  # a document server on 127.0.0.1
@pytest.mark.parametrize(
    "content_type", ["text/html", "text/plain", "application/javascript", "application/jsonp", ""]
)
def test_only_json_is_accepted(docs: DocServer, content_type: str) -> None:
    docs.answers["/agent.json"] = Answer(b"{}", headers={"Content-Type": content_type})
    with pytest.raises(FetchRefused, match="application/json"):
        loopback_fetcher().fetch(docs.base + "/agent.json")


@pytest.mark.process  # a document server on 127.0.0.1
def test_json_with_a_charset_is_accepted(docs: DocServer) -> None:
    docs.answers["/agent.json"] = Answer(b"{}", headers={"Content-Type": "Application/JSON; charset=utf-8"})
    assert loopback_fetcher().fetch(docs.base + "/agent.json").body == b"{}"


@pytest.mark.process  # a document server on 127.0.0.1
@pytest.mark.parametrize("status", [204, 404, 500])
def test_other_statuses_are_refused(docs: DocServer, status: int) -> None:
    docs.answers["/agent.json"] = Answer(b"{}", status)
    with pytest.raises(FetchRefused, match=str(status)):
        loopback_fetcher().fetch(docs.base + "/agent.json")


def test_public_addresses_are_public() -> None:
    import ipaddress

    assert public_address(ipaddress.ip_address(PUBLIC))
    assert public_address(ipaddress.ip_address("2606:4700:4700::1111"))
