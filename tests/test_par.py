"""Pushed authorization requests (jwtauth/resources/par.py, oauth/par.py, store/par.py; RFC 9126)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from falcon import testing

from jwtauth.resources import paths
from tests.assertionkit import ClientKey, key_client, params
from tests.authflow import open_page, redirect_params, submit
from tests.dpopkit import DPoPKey
from tests.helpers import (
    ISSUER,
    SPA_URI,
    Clock,
    MakeApp,
    assert_clean_error,
    call,
    client_like,
    pkce_pair,
    token,
)

REDIRECT = "https://www.example.com"
PUSH = {"response_type": "code", "redirect_uri": REDIRECT, "scope": "read", "state": "s1"}


def push(http: testing.TestClient, **changes: str) -> testing.Result:
    return call(http, paths.PAR, {**PUSH, **changes})


def request_uri(result: testing.Result) -> str:
    assert result.status_code == 201, result.text
    uri: str = result.json["request_uri"]
    return uri


@pytest.fixture
def http(make_app: MakeApp) -> testing.TestClient:
    return make_app()


def test_push_answers_201_with_a_request_uri(http: testing.TestClient, store: Any) -> None:
    result = push(http)
    assert result.status_code == 201 and result.headers["Cache-Control"] == "no-store"
    assert result.json["expires_in"] == 60
    uri = result.json["request_uri"]
    assert uri.startswith("urn:ietf:params:oauth:request_uri:") and len(uri) >= 34 + 43  # 256 bits
    (key,) = [k for k in store.scan_iter() if b"{par:" in k]
    assert uri.encode().split(b":")[-1] not in key and 0 < store.pttl(key) <= 60_000  # a digest, a TTL


def test_the_pushed_request_drives_the_page_and_is_used_once(http: testing.TestClient) -> None:
    uri = request_uri(push(http))
    page = open_page(http, {"client_id": "testclient", "request_uri": uri})
    assert page.result.status_code == 200, page.result.text
    assert set(page.fields) == {"client_id", "request_uri", "csrf_token"}  # pushed values stay server-side
    again = open_page(http, {"client_id": "testclient", "request_uri": uri}, cookie=page.cookie)
    assert again.result.status_code == 200  # a reload still works: nothing is spent before consent
    done = submit(http, again)
    assert done.status_code == 303, done.text
    answer = redirect_params(done.headers["Location"])
    assert (
        done.headers["Location"].startswith(REDIRECT) and answer["state"] == "s1" and answer["iss"] == ISSUER
    )
    exchanged = token(
        http, {"grant_type": "authorization_code", "code": answer["code"], "redirect_uri": REDIRECT}
    )
    assert exchanged.status_code == 200 and exchanged.json["scope"] == "read"
    gone = open_page(http, {"client_id": "testclient", "request_uri": uri})
    assert gone.result.status_code == 400 and "expired or was already used" in gone.result.text
    assert "Location" not in gone.result.headers


def test_deny_spends_the_request_too(http: testing.TestClient) -> None:
    uri = request_uri(push(http))
    page = open_page(http, {"client_id": "testclient", "request_uri": uri})
    denied = submit(http, page, decision="deny")
    assert redirect_params(denied.headers["Location"])["error"] == "access_denied"
    replay = submit(http, page)
    assert replay.status_code == 400 and "Location" not in replay.headers


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"response_type": "code magic"}, "unsupported_response_type"),
        ({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
        ({"scope": "admin"}, "invalid_scope"),
        ({"code_challenge": "short", "code_challenge_method": "S256"}, "invalid_request"),
        ({"code_challenge_method": "plain", "code_challenge": "x" * 43}, "invalid_request"),
        ({"request_uri": "urn:ietf:params:oauth:request_uri:abc"}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "invalid_request"),
        ({"response_type": ""}, "invalid_request"),
    ],
)
def test_every_parameter_is_validated_at_the_push(
    http: testing.TestClient, store: Any, changes: dict[str, str], error: str
) -> None:
    assert_clean_error(push(http, **changes), 400, error)
    assert not [k for k in store.scan_iter() if b"{par:" in k]


def test_push_needs_client_authentication(http: testing.TestClient) -> None:
    assert_clean_error(call(http, paths.PAR, PUSH, auth=("testclient", "wrong")), 401, "invalid_client")
    assert_clean_error(call(http, paths.PAR, PUSH, auth=None), 401, "invalid_client")
    assert_clean_error(call(http, paths.PAR, PUSH, query="scope=read"), 400, "invalid_request")
    assert http.simulate_get(paths.PAR).status_code == 405


def test_a_public_client_pushes_with_its_client_id(make_app: MakeApp, settings: Any) -> None:
    spa = client_like(
        settings, "spa", public=True, redirect_uris=(SPA_URI,), grant_types=frozenset({"authorization_code"})
    )
    http = make_app(clients=(spa,))
    _, challenge = pkce_pair()
    body = {**PUSH, "redirect_uri": SPA_URI, "code_challenge": challenge, "code_challenge_method": "S256"}
    uri = request_uri(call(http, paths.PAR, body, auth="spa"))
    assert open_page(http, {"client_id": "spa", "request_uri": uri}).result.status_code == 200
    # PKCE stays mandatory for a public client, pushed or not.
    assert_clean_error(
        call(http, paths.PAR, {**PUSH, "redirect_uri": SPA_URI}, auth="spa"), 400, "invalid_request"
    )


def test_require_par_per_client_and_globally(make_app: MakeApp, settings: Any) -> None:
    query = {"response_type": "code", "client_id": "testclient", "redirect_uri": REDIRECT, "state": "x"}
    strict = make_app(clients=(dataclasses.replace(settings.clients[0], require_par=True),))
    refused = strict.simulate_get(paths.AUTHORIZE, params=query)
    assert refused.status_code == 303
    answer = redirect_params(refused.headers["Location"])
    assert answer["error"] == "invalid_request" and "RFC 9126" in answer["error_description"]
    assert answer["state"] == "x" and answer["iss"] == ISSUER
    assert (
        open_page(
            strict, {"client_id": "testclient", "request_uri": request_uri(push(strict))}
        ).result.status_code
        == 200
    )
    everyone = make_app(par_required=True)
    assert everyone.simulate_get(paths.AUTHORIZE, params=query).status_code == 303
    meta = everyone.simulate_get(paths.METADATA[0]).json
    assert meta["require_pushed_authorization_requests"] is True
    assert meta["pushed_authorization_request_endpoint"] == ISSUER + paths.PAR


def test_private_key_jwt_at_the_par_endpoint(make_app: MakeApp, clock: Clock) -> None:
    key = ClientKey()
    http = make_app(clients=(key_client("bank", key.jwks(), require_par=True),))
    body = params(
        key.assertion("bank", now=clock.now), **{**PUSH, "redirect_uri": "https://rp.example.com/cb"}
    )
    uri = request_uri(call(http, paths.PAR, body, auth=None))
    page = open_page(http, {"client_id": "bank", "request_uri": uri})
    assert page.result.status_code == 200, page.result.text
    code = redirect_params(submit(http, page).headers["Location"])["code"]
    redeem = params(key.assertion("bank", now=clock.now), grant_type="authorization_code", code=code)
    assert call(http, paths.TOKEN, redeem, auth=None).status_code == 200


def test_a_dpop_proof_at_the_push_binds_the_code(http: testing.TestClient, clock: Clock) -> None:
    holder, thief = DPoPKey(), DPoPKey()
    proof = holder.proof(htu=ISSUER + paths.PAR, iat=clock.now)
    pushed = call(http, paths.PAR, PUSH, headers={"DPoP": proof})
    page = open_page(http, {"client_id": "testclient", "request_uri": request_uri(pushed)})
    code = redirect_params(submit(http, page).headers["Location"])["code"]
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    stolen = call(http, paths.TOKEN, exchange, headers={"DPoP": thief.proof(iat=clock.now)})
    assert_clean_error(stolen, 400, "invalid_grant")
    bound = call(http, paths.TOKEN, exchange, headers={"DPoP": holder.proof(iat=clock.now)})
    assert bound.status_code == 200 and bound.json["token_type"] == "DPoP"
    mismatch = call(
        http,
        paths.PAR,
        {**PUSH, "dpop_jkt": thief.jkt},
        headers={"DPoP": holder.proof(htu=ISSUER + paths.PAR, iat=clock.now)},
    )
    assert_clean_error(mismatch, 400, "invalid_request")
