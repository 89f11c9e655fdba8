"""private_key_jwt client authentication (jwtauth/accounts/assertions.py, RFC 7523 §2.2, §3)."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
from falcon import testing

from jwtauth.resources import paths
from jwtauth.store.assertions import assertion_key
from tests.assertionkit import ClientKey, key_client, params
from tests.helpers import INTROSPECT, ISSUER, REVOKE, TOKENS, Clock, MakeApp, assert_clean_error, call

CC = {"grant_type": "client_credentials"}


@pytest.fixture
def key() -> ClientKey:
    return ClientKey()


@pytest.fixture
def http(make_app: MakeApp, key: ClientKey) -> testing.TestClient:
    return make_app(clients=(key_client("bank", key.jwks()),))


def test_client_credentials_with_an_assertion(http: testing.TestClient, key: ClientKey, clock: Clock) -> None:
    result = call(http, TOKENS, params(key.assertion("bank", now=clock.now), **CC), auth=None)
    assert result.status_code == 200, result.text
    assert result.json["scope"] == "read" and "refresh_token" not in result.json


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA"])
def test_every_signing_algorithm_of_the_metadata_works(make_app: MakeApp, clock: Clock, alg: str) -> None:
    key = ClientKey(alg)
    http = make_app(clients=(key_client("bank", key.jwks()),))
    result = call(http, TOKENS, params(key.assertion("bank", now=clock.now), **CC), auth=None)
    assert result.status_code == 200, result.text
    meta = http.simulate_get("/.well-known/oauth-authorization-server").json
    assert alg in meta["token_endpoint_auth_signing_alg_values_supported"]
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
    assert "private_key_jwt" in meta["introspection_endpoint_auth_methods_supported"]
    assert "client_secret_jwt" not in meta["token_endpoint_auth_methods_supported"]


def test_the_jti_is_spent_in_redis_until_exp(
    http: testing.TestClient, key: ClientKey, clock: Clock, store: Any
) -> None:
    assertion = key.assertion("bank", now=clock.now, lifetime=120, jti="once")
    assert call(http, TOKENS, params(assertion, **CC), auth=None).status_code == 200
    marker = f"jwtauth:jti:{{{assertion_key('bank', 'once')}}}"
    assert store.exists(marker)
    assert 120 < store.pttl(marker) / 1000 <= 120 + 30  # to exp, plus the clock leeway
    replay = call(http, TOKENS, params(assertion, **CC), auth=None)
    assert_clean_error(replay, 401, "invalid_client")


def test_client_id_beside_the_assertion_must_match(
    http: testing.TestClient, key: ClientKey, clock: Clock
) -> None:
    good = params(key.assertion("bank", now=clock.now), client_id="bank", **CC)
    assert call(http, TOKENS, good, auth=None).status_code == 200
    other = params(key.assertion("bank", now=clock.now), client_id="testclient", **CC)
    assert_clean_error(call(http, TOKENS, other, auth=None), 401, "invalid_client")


def test_one_method_per_request(http: testing.TestClient, key: ClientKey, clock: Clock) -> None:
    both = call(http, TOKENS, params(key.assertion("bank", now=clock.now), **CC), auth=("bank", "x"))
    assert_clean_error(both, 400, "invalid_request")
    secret = params(key.assertion("bank", now=clock.now), client_secret="x", **CC)
    assert_clean_error(call(http, TOKENS, secret, auth=None), 400, "invalid_request")


def test_a_wrong_assertion_type_or_a_missing_assertion(
    http: testing.TestClient, key: ClientKey, clock: Clock
) -> None:
    assertion = key.assertion("bank", now=clock.now)
    wrong = params(
        assertion, client_assertion_type="urn:ietf:params:oauth:client-assertion-type:saml2-bearer", **CC
    )
    assert_clean_error(call(http, TOKENS, wrong, auth=None), 401, "invalid_client")
    missing = {"client_assertion_type": params(assertion)["client_assertion_type"], **CC}
    assert_clean_error(call(http, TOKENS, missing, auth=None), 401, "invalid_client")


def test_a_key_client_cannot_pose_as_public_nor_use_a_secret(http: testing.TestClient) -> None:
    assert_clean_error(call(http, TOKENS, CC, auth="bank"), 401, "invalid_client")
    assert_clean_error(call(http, TOKENS, CC, auth=("bank", "guess")), 401, "invalid_client")


def test_introspection_and_revocation_take_assertions(
    http: testing.TestClient, key: ClientKey, clock: Clock
) -> None:
    minted = call(http, TOKENS, params(key.assertion("bank", now=clock.now), **CC), auth=None).json
    seen = call(
        http,
        INTROSPECT,
        params(key.assertion("bank", now=clock.now), token=minted["access_token"]),
        auth=None,
    )
    assert seen.status_code == 200 and seen.json["active"] is True and seen.json["client_id"] == "bank"
    revoked = call(
        http, REVOKE, params(key.assertion("bank", now=clock.now), token=minted["access_token"]), auth=None
    )
    assert revoked.status_code == 400 and revoked.json["error"] == "unsupported_token_type"  # authenticated


def test_the_token_endpoint_audience_only_behind_the_setting(
    make_app: MakeApp, key: ClientKey, clock: Clock
) -> None:
    client = key_client("bank", key.jwks())
    strict = make_app(clients=(client,))
    url = ISSUER + TOKENS
    refused = call(strict, TOKENS, params(key.assertion("bank", now=clock.now, aud=url), **CC), auth=None)
    assert_clean_error(refused, 401, "invalid_client")
    lenient = make_app(clients=(client,), accept_token_endpoint_audience=True)
    accepted = call(lenient, TOKENS, params(key.assertion("bank", now=clock.now, aud=url), **CC), auth=None)
    assert accepted.status_code == 200, accepted.text


def test_without_kid_the_only_key_is_used(make_app: MakeApp, clock: Clock) -> None:
    one, two = ClientKey(), ClientKey()
    single = make_app(clients=(key_client("bank", one.jwks()),))
    bare = params(one.assertion("bank", now=clock.now, header={"kid": None}), **CC)
    assert call(single, TOKENS, bare, auth=None).status_code == 200
    double = make_app(clients=(key_client("bank", one.jwks(two)),))
    ambiguous = params(one.assertion("bank", now=clock.now, header={"kid": None}), **CC)
    assert_clean_error(call(double, TOKENS, ambiguous, auth=None), 401, "invalid_client")
    named = params(two.assertion("bank", now=clock.now), **CC)
    assert call(double, TOKENS, named, auth=None).status_code == 200


def test_redis_down_is_503_not_500(make_app: MakeApp, key: ClientKey, clock: Clock) -> None:
    # The jti must be spent somewhere shared; without Redis, even client_credentials waits.
    server = fakeredis.FakeServer()
    server.connected = False  # every command raises redis.ConnectionError
    http = make_app(clients=(key_client("bank", key.jwks()),), store=fakeredis.FakeRedis(server=server))
    result = call(http, TOKENS, params(key.assertion("bank", now=clock.now), **CC), auth=None)
    assert_clean_error(result, 503, "temporarily_unavailable")
    assert result.headers.get("Retry-After")


def test_the_device_authorization_endpoint_takes_assertions(
    make_app: MakeApp, key: ClientKey, clock: Clock
) -> None:
    device = "urn:ietf:params:oauth:grant-type:device_code"
    http = make_app(clients=(key_client("bank", key.jwks(), grant_types=[device]),))
    started = call(http, paths.DEVICE_AUTHORIZATION, params(key.assertion("bank", now=clock.now)), auth=None)
    assert started.status_code == 200, started.text
    assert started.json["device_code"] and started.json["user_code"]
    replay = call(
        http, paths.DEVICE_AUTHORIZATION, params(key.assertion("bank", now=clock.now, jti="x")), auth=None
    )
    assert replay.status_code == 200
    again = call(
        http, paths.DEVICE_AUTHORIZATION, params(key.assertion("bank", now=clock.now, jti="x")), auth=None
    )
    assert_clean_error(again, 401, "invalid_client")
