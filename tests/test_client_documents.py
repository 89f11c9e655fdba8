"""jwtauth.accounts.client_documents: URL client IDs, their checks, their caches and their flow."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import fakeredis
import pytest
from falcon import testing

from jwtauth.accounts.client_documents import (
    FAILURE_TTL,
    TTL_CEILING,
    TTL_FLOOR,
    ClientDocuments,
    DocumentRefused,
    cache_ttl,
)
from jwtauth.accounts.document_fetch import Fetched, FetchRefused
from jwtauth.app import create_app
from jwtauth.config.client_metadata import ClientMetadataSettings
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from tests.authflow import open_page, redirect_params, submit
from tests.docserver import DocServer, client_document, doc_server
from tests.helpers import FORM, pkce_pair

URL = "https://agent.example/oauth/client.json"
OPTIONS = ClientMetadataSettings(
    enabled=True,
    allowed_hosts=("agent.example", "*.tools.example"),
    scopes=("read", "write"),
    audiences=("https://api.example.com",),
)


class FakeFetcher:
    def __init__(self, body: bytes | None = None, cache_control: str = "") -> None:
        self.body, self.cache_control, self.calls = body, cache_control, 0

    def fetch(self, url: str) -> Fetched:
        self.calls += 1
        if self.body is None:
            raise FetchRefused("the document could not be fetched")
        return Fetched(self.body, self.cache_control)


class Clock:
    now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


def documents(fetcher: FakeFetcher, store: Any = None, clock: Any = None, **options: Any) -> ClientDocuments:
    from jwtauth.store.documents import DocumentCache

    store = store or fakeredis.FakeRedis(server=fakeredis.FakeServer())
    settings = dataclasses.replace(OPTIONS, **options)
    return ClientDocuments(
        settings, "https://default.example", DocumentCache(store, prefix="t:"), fetcher, clock or Clock()
    )  # type: ignore[arg-type]


def body(**changes: Any) -> bytes:
    return json.dumps(client_document(URL, **changes)).encode()


def test_a_valid_document_becomes_a_public_pkce_client() -> None:
    client = documents(FakeFetcher(body())).client(URL)
    assert client.client_id == URL and client.name == "Example Agent"
    assert client.public and client.require_pkce
    assert client.redirect_uris == ("http://127.0.0.1/callback",)
    assert client.grant_types == {"authorization_code", "refresh_token"}
    assert client.scopes == {"read"} and client.audiences == ("https://api.example.com",)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"client_id": URL + "x"}, "differs"),
        ({"client_id": None}, "differs"),
        ({"client_secret": "s3cret"}, "secret"),
        ({"client_secret_expires_at": 0}, "secret"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "none"),
        ({"token_endpoint_auth_method": "client_secret_post"}, "none"),
        ({"grant_types": ["client_credentials"]}, "grant_types"),
        ({"grant_types": ["authorization_code", "password"]}, "grant_types"),
        ({"grant_types": ["authorization_code", "implicit"]}, "grant_types"),
        ({"grant_types": ["refresh_token"]}, "grant_types"),
        ({"response_types": ["token"]}, "response_types"),
        ({"redirect_uris": []}, "redirect_uris"),
        ({"redirect_uris": "http://127.0.0.1/cb"}, "redirect_uris"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "redirect URI"),
        ({"redirect_uris": ["http://evil.example/cb"]}, "redirect URI"),
        ({"redirect_uris": ["https://a.example/cb#x"]}, "redirect URI"),
        ({"scope": ["read"]}, "scope"),
    ],
)
def test_bad_documents_are_refused(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(DocumentRefused, match=reason):
        documents(FakeFetcher(body(**changes))).client(URL)


@pytest.mark.parametrize("raw", [b"[]", b"not json", b'{"client_id": 1, "client_id": 2}', b'{"a": NaN}'])
def test_non_objects_and_ambiguous_json_are_refused(raw: bytes) -> None:
    with pytest.raises(DocumentRefused, match="JSON"):
        documents(FakeFetcher(raw)).client(URL)


@pytest.mark.parametrize(
    "url",
    [
        "https://agent.example",
        "https://agent.example/",
        "https://agent.example/a/../client.json",
        "https://agent.example/./client.json",
        "https://user@agent.example/client.json",
        "https://agent.example/client.json?x=1",
        "https://agent.example/client.json#x",
        "http://agent.example/client.json",
        "https://evil.example/client.json",
        "https://agent.example.evil.example/client.json",
        "https://tools.example/client.json",  # *.tools.example means subdomains only
        "https://agent.example/" + "a" * 1100,
    ],
)
def test_unusable_client_id_urls_are_refused_without_a_fetch(url: str) -> None:
    fetcher = FakeFetcher(body())
    with pytest.raises(DocumentRefused):
        documents(fetcher).client(url)
    assert fetcher.calls == 0


def test_subdomain_patterns_match_subdomains() -> None:
    url = "https://cli.tools.example/client.json"
    client = documents(FakeFetcher(json.dumps(client_document(url)).encode())).client(url)
    assert client.name == "Example Agent"


def test_the_operator_decides_scopes_and_the_document_narrows_them() -> None:
    assert documents(FakeFetcher(body(scope="read write admin"))).client(URL).scopes == {"read", "write"}
    assert documents(FakeFetcher(body(scope=None))).client(URL).scopes == {"read", "write"}
    unnamed = documents(FakeFetcher(body(client_name=None))).client(URL)
    assert unnamed.name == "agent.example"  # no name: the host stands in


@pytest.mark.parametrize(
    ("header", "ttl"),
    [
        ("", 600),
        ("max-age=3600", 3600),
        ("public, max-age=5", TTL_FLOOR),
        ("max-age=99999999", TTL_CEILING),
        ("no-store", TTL_FLOOR),
        ("no-cache, max-age=3600", TTL_FLOOR),
        ('max-age="120"', 120),
    ],
)
def test_cache_control_is_honoured_within_floor_and_ceiling(header: str, ttl: int) -> None:
    assert cache_ttl(header) == ttl


def test_the_redis_cache_is_shared_and_expires() -> None:
    store = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    first = FakeFetcher(body(), "max-age=3600")
    documents(first, store).client(URL)
    (key,) = store.keys("t:*")
    assert b"{doc:" in key and 3590 < store.ttl(key) <= 3600  # never a key without a TTL
    second = FakeFetcher(body())
    assert documents(second, store).client(URL).client_id == URL  # another worker: no fetch
    assert second.calls == 0


def test_the_process_keeps_its_own_copy_for_the_floor_at_most() -> None:
    clock = Clock()
    fetcher = FakeFetcher(body(), "max-age=3600")
    store = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    resolver = documents(fetcher, store, clock)
    resolver.client(URL)
    store.flushall()  # our own fake server: the shared copy is gone
    resolver.client(URL)
    assert fetcher.calls == 1
    clock.now += TTL_FLOOR + 1
    resolver.client(URL)
    assert fetcher.calls == 2


def test_failures_are_cached_briefly() -> None:
    clock = Clock()
    fetcher = FakeFetcher(None)
    store = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    resolver = documents(fetcher, store, clock)
    for _ in range(3):
        with pytest.raises(DocumentRefused, match="could not be fetched"):
            resolver.client(URL)
    assert fetcher.calls == 1
    (key,) = store.keys("t:*")
    assert 0 < store.ttl(key) <= FAILURE_TTL
    clock.now += FAILURE_TTL + 1
    store.delete(key)  # what Redis does after the TTL (fakeredis keeps real time)
    fetcher.body = body()
    assert resolver.client(URL).client_id == URL


# --- the flow, with the real fetcher and a document on loopback --------------------------------


@pytest.fixture
def docs() -> Iterator[DocServer]:
    with doc_server() as server:
        yield server


@pytest.fixture
def make(settings: Settings, keyring: KeyRing, store: Any) -> Any:
    def build(**options: Any) -> testing.TestClient:
        chosen = dataclasses.replace(
            OPTIONS, allowed_hosts=("127.0.0.1",), allow_insecure_loopback=True, scopes=("read",)
        )
        changed = dataclasses.replace(settings, client_id_metadata=dataclasses.replace(chosen, **options))
        return testing.TestClient(create_app(changed, keyring, store))

    return build


@pytest.mark.process  # a document server on 127.0.0.1
def test_a_document_client_signs_in_with_pkce_and_the_page_shows_its_host(make: Any, docs: DocServer) -> None:
    http = make()
    url = docs.document("/agent.json")
    verifier, challenge = pkce_pair()
    redirect = "http://127.0.0.1:53682/callback"
    query = {
        "response_type": "code",
        "client_id": url,
        "redirect_uri": redirect,
        "scope": "read",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "s",
    }
    page = open_page(http, query)
    assert page.result.status_code == 200, page.result.text
    host = docs.base.removeprefix("http://")
    assert f"published by <strong>{host}</strong>" in page.result.text
    assert "Example Agent" in page.result.text
    result = submit(http, page)
    assert result.status_code == 303 and result.headers["Location"].startswith(redirect + "?")
    code = redirect_params(result.headers["Location"])["code"]
    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": url,
        "code_verifier": verifier,
        "redirect_uri": redirect,
    }
    token = http.simulate_post("/api/v1/tokens", body=urlencode(exchange), headers=FORM)
    assert token.status_code == 200, token.text
    assert token.json["scope"] == "read" and token.json["refresh_token"]
    assert docs.hits["/agent.json"] == 1  # fetched once for the page, the POST and the token
    meta = http.simulate_get("/.well-known/oauth-authorization-server").json
    assert meta["client_id_metadata_document_supported"] is True


@pytest.mark.process  # a document server on 127.0.0.1
def test_a_refused_document_is_an_error_page_that_names_the_reason(make: Any, docs: DocServer) -> None:
    url = docs.document("/agent.json", client_document("https://elsewhere.example/agent.json"))
    page = open_page(
        make(), {"response_type": "code", "client_id": url, "redirect_uri": "http://127.0.0.1/callback"}
    )
    assert page.result.status_code == 400 and "Location" not in page.result.headers
    assert "differs from its URL" in page.result.text


@pytest.mark.process  # a document server on 127.0.0.1
def test_disabled_means_url_client_ids_are_unknown(make: Any, docs: DocServer) -> None:
    url = docs.document("/agent.json")
    http = make(enabled=False)
    page = open_page(http, {"response_type": "code", "client_id": url})
    assert page.result.status_code == 400 and docs.hits.get("/agent.json") is None
    meta = http.simulate_get("/.well-known/oauth-authorization-server").json
    assert "client_id_metadata_document_supported" not in meta


@pytest.mark.process  # a document server on 127.0.0.1
def test_a_document_client_never_gets_client_credentials(make: Any, docs: DocServer) -> None:
    url = docs.document("/agent.json")
    form = urlencode({"grant_type": "client_credentials", "client_id": url})
    result = make().simulate_post("/api/v1/tokens", body=form, headers=FORM)
    assert result.status_code == 400 and result.json["error"] == "unauthorized_client", result.text


def test_a_store_outage_degrades_to_fetching() -> None:
    import redis

    class Down:
        def get(self, *args: Any, **kwargs: Any) -> Any:
            raise redis.ConnectionError("down")

        set = get

    down = Down()
    fetcher = FakeFetcher(body())
    assert documents(fetcher, down).client(URL).client_id == URL
    assert fetcher.calls == 1


def test_the_process_copy_is_bounded() -> None:
    from jwtauth.accounts.client_documents import LOCAL_ENTRIES

    resolver = documents(FakeFetcher(None))
    for i in range(LOCAL_ENTRIES + 10):
        with pytest.raises(DocumentRefused):
            resolver.client(f"https://agent.example/{i}.json")
    assert len(resolver._local) == LOCAL_ENTRIES
