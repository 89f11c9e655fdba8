"""A private_key_jwt client's keys (jwtauth/accounts/client_keys.py): inline, or from jwks_uri, cached."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jwtauth.accounts.client_keys import REFETCH_INTERVAL, ClientKeys, jwks_fetcher
from jwtauth.accounts.document_fetch import Fetched, FetchRefused
from tests.assertionkit import ClientKey, key_client, params
from tests.docserver import Answer, doc_server
from tests.helpers import TOKENS, Clock, MakeApp, assert_clean_error, call

ONE, TWO = ClientKey(kid="one"), ClientKey(kid="two")
URI = "https://rp.example.com/jwks.json"


class FakeFetcher:
    """Answer with the set it holds (or raise), counting fetches."""

    def __init__(self, jwks: dict[str, Any], cache_control: str = "max-age=600") -> None:
        self.jwks, self.cache_control, self.calls, self.fail = jwks, cache_control, 0, False

    def fetch(self, url: str) -> Fetched:
        self.calls += 1
        if self.fail:
            raise FetchRefused("down")
        return Fetched(json.dumps(self.jwks).encode(), self.cache_control)


def remote(fetcher: FakeFetcher, clock: Clock) -> tuple[ClientKeys, Any]:
    return ClientKeys(fetcher, clock), key_client("bank", jwks_uri=URI)  # type: ignore[arg-type]


def test_inline_keys_by_kid(clock: Clock) -> None:
    keys = ClientKeys(FakeFetcher({}), clock)  # type: ignore[arg-type]
    client = key_client("bank", ONE.jwks(TWO))
    found = keys.key_for(client, "two")
    assert found is not None and found.key_id == "two" and found.algorithm_name == "ES256"
    assert keys.key_for(client, "three") is None
    assert keys.key_for(client, None) is None  # two keys: a kid is needed


def test_a_remote_set_is_cached_for_its_max_age(clock: Clock) -> None:
    fetcher = FakeFetcher(ONE.jwks(), "public, max-age=120")
    keys, client = remote(fetcher, clock)
    assert keys.key_for(client, "one") is not None and keys.key_for(client, "one") is not None
    assert fetcher.calls == 1
    clock.now += 121
    assert keys.key_for(client, "one") is not None and fetcher.calls == 2


def test_an_unknown_kid_refetches_at_a_bounded_rate(clock: Clock) -> None:
    fetcher = FakeFetcher(ONE.jwks())
    keys, client = remote(fetcher, clock)
    keys.key_for(client, "one")
    for _ in range(50):  # random kids cannot turn into a fetch storm
        assert keys.key_for(client, "random") is None
    assert fetcher.calls == 1
    fetcher.jwks = ONE.jwks(TWO)  # the client rotates in a new key
    clock.now += REFETCH_INTERVAL
    assert keys.key_for(client, "two") is not None and fetcher.calls == 2


def test_a_failing_fetch_keeps_the_last_set(clock: Clock) -> None:
    fetcher = FakeFetcher(ONE.jwks(), "max-age=60")
    keys, client = remote(fetcher, clock)
    keys.key_for(client, "one")
    fetcher.fail = True
    clock.now += 61
    assert keys.key_for(client, "one") is not None and fetcher.calls == 2


def test_private_keys_in_a_remote_set_are_ignored(clock: Clock) -> None:
    leaked = {**ONE.jwk, "d": "AAAA"}
    keys, client = remote(FakeFetcher({"keys": [leaked]}), clock)
    assert keys.key_for(client, "one") is None


@pytest.mark.process  # a JWK Set server on 127.0.0.1
def test_a_jwks_uri_client_authenticates_through_the_safe_fetcher(make_app: MakeApp, clock: Clock) -> None:
    with doc_server() as server:
        body = json.dumps(ONE.jwks()).encode()
        server.answers["/jwks"] = Answer(body, headers={"Content-Type": "application/jwk-set+json"})
        client = key_client("bank", jwks_uri=server.base + "/jwks")
        assertion = params(ONE.assertion("bank", now=clock.now), grant_type="client_credentials")
        # Loopback is refused unless the development setting allows it (SSRF rules).
        refused = make_app(clients=(client,))
        assert_clean_error(call(refused, TOKENS, assertion, auth=None), 401, "invalid_client")
        allowed = make_app(clients=(client,), jwks_insecure_loopback=True)
        assert call(allowed, TOKENS, assertion, auth=None).status_code == 200
        assert server.hits["/jwks"] == 1


def test_the_jwks_fetcher_takes_the_jwk_set_media_type() -> None:
    fetcher = jwks_fetcher(allow_insecure_loopback=False)
    assert "application/jwk-set+json" in fetcher._media_types
    assert fetcher._max_bytes == 16 * 1024
