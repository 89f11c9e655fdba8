"""Attacks on pushed authorization requests (RFC 9126 §7): another client's request_uri, reuse,
expiry, guessing, parameters smuggled beside the request_uri, a form moved to another request."""

from __future__ import annotations

from typing import Any

import pytest
from falcon import testing

from jwtauth.resources import paths
from tests.authflow import open_page, redirect_params, submit
from tests.helpers import MULTI, MULTI_URIS, OTHER, Clock, call, snapshot

REDIRECT = "https://www.example.com"
PUSH = {"response_type": "code", "redirect_uri": REDIRECT, "scope": "read", "state": "pushed"}


def push(http: testing.TestClient, auth: Any = ("testclient", "testpassword"), **changes: str) -> str:
    result = call(http, paths.PAR, {**PUSH, **changes}, auth=auth)
    assert result.status_code == 201, result.text
    uri: str = result.json["request_uri"]
    return uri


def refused_page(result: testing.Result) -> None:
    """Assert an error page that redirects nowhere."""
    assert result.status_code == 400, result.text
    assert "Location" not in result.headers and "text/html" in result.headers["Content-Type"]


def test_another_clients_request_uri_is_refused_and_not_spent(http: testing.TestClient) -> None:
    uri = push(http)
    refused_page(open_page(http, {"client_id": OTHER[0], "request_uri": uri}).result)
    page = open_page(http, {"client_id": "testclient", "request_uri": uri})
    assert page.result.status_code == 200  # the owner's request survived the probe
    moved = submit(http, page, changes={"client_id": OTHER[0]})
    refused_page(moved)
    assert submit(http, page).status_code == 303


def test_a_used_request_uri_is_refused(http: testing.TestClient) -> None:
    uri = push(http)
    page = open_page(http, {"client_id": "testclient", "request_uri": uri})
    assert submit(http, page).status_code == 303
    refused_page(submit(http, page))  # the same form again
    refused_page(open_page(http, {"client_id": "testclient", "request_uri": uri}).result)


def test_an_expired_request_uri_is_refused(http: testing.TestClient, clock: Clock) -> None:
    uri = push(http)
    page = open_page(http, {"client_id": "testclient", "request_uri": uri})
    clock.now += 61
    refused_page(open_page(http, {"client_id": "testclient", "request_uri": uri}).result)
    refused_page(submit(http, page))


@pytest.mark.parametrize(
    "uri",
    [
        "urn:ietf:params:oauth:request_uri:" + "A" * 43,  # well-formed, never pushed
        "urn:ietf:params:oauth:request_uri:short",
        "urn:ietf:params:oauth:request_uri:" + "A" * 43 + "%0d%0a",
        "urn:ietf:params:oauth:request_uri:",
    ],
)
def test_guessed_request_uris_are_refused(http: testing.TestClient, uri: str) -> None:
    refused_page(open_page(http, {"client_id": "testclient", "request_uri": uri}).result)


def test_a_request_uri_without_client_id_is_refused(http: testing.TestClient) -> None:
    refused_page(open_page(http, {"request_uri": push(http)}).result)


def test_query_parameters_beside_the_request_uri_count_for_nothing(http: testing.TestClient) -> None:
    uri = push(http)
    smuggled = {
        "client_id": "testclient",
        "request_uri": uri,
        "redirect_uri": "https://evil.example/cb",
        "scope": "read write",
        "state": "attacker",
        "response_type": "token",
        "code_challenge": "A" * 43,
        "code_challenge_method": "S256",
    }
    page = open_page(http, smuggled)
    assert page.result.status_code == 200 and "evil.example" not in page.result.text
    done = submit(http, page, changes={"scope": "write", "redirect_uri": "https://evil.example/cb"})
    assert done.headers["Location"].startswith(REDIRECT + "/?code=")
    answer = redirect_params(done.headers["Location"])
    assert answer["state"] == "pushed"
    exchanged = call(http, paths.TOKEN, {"grant_type": "authorization_code", "code": answer["code"]})
    assert exchanged.status_code == 200 and exchanged.json["scope"] == "read"  # no PKCE was smuggled in


def test_the_form_is_bound_to_its_pushed_request(http: testing.TestClient, state: Any) -> None:
    first, second = push(http), push(http, scope="read write")
    page = open_page(http, {"client_id": "testclient", "request_uri": first})
    before = state()
    moved = submit(http, page, changes={"request_uri": second})
    assert moved.status_code == 400 and "expired or was changed" in moved.text
    assert state() == before  # nothing spent, no code issued
    assert open_page(http, {"client_id": "testclient", "request_uri": second}).result.status_code == 200


def test_an_unregistered_redirect_uri_cannot_be_pushed(http: testing.TestClient, store: Any) -> None:
    for uri in ("https://evil.example/cb", REDIRECT + "/cb", "https://www.example.com.evil", MULTI_URIS[0]):
        result = call(http, paths.PAR, {**PUSH, "redirect_uri": uri})
        assert result.status_code == 400 and result.json["error"] == "invalid_request"
    assert not [k for k in snapshot(store) if b"{par:" in k]
    assert call(http, paths.PAR, {**PUSH, "redirect_uri": MULTI_URIS[0]}, auth=MULTI).status_code == 201


def test_a_pushed_client_id_cannot_name_another_client(http: testing.TestClient) -> None:
    uri = push(http, client_id="testclient")  # matching is fine
    assert uri
    other = call(http, paths.PAR, {**PUSH, "client_id": OTHER[0]})
    assert other.status_code == 400 and other.json["error"] == "invalid_request"  # RFC 6749 §2.3 mismatch


def test_pushed_requests_leave_only_digests_in_redis(http: testing.TestClient, store: Any) -> None:
    uri = push(http)
    dump = repr(snapshot(store))
    assert uri.rsplit(":", 1)[1] not in dump
