"""Issue 18, item 6: a thief of a public client's redeemed code cannot revoke the victim's grant.

RFC 6749 §4.1.2 says a code used twice SHOULD revoke what it issued. For a public client anyone
holding the code could trigger that (it stayed in history, logs, a Referer) and log the user
out. Reuse revokes only when the presenter proves it is the client: the PKCE verifier matches,
or a confidential client authenticated.
"""

from __future__ import annotations

from falcon import testing

from tests.authflow import authorize, code_from
from tests.helpers import SPA, SPA_URI, assert_clean_error, pkce_pair, refresh, token

FLOW = {"response_type": "code", "client_id": SPA, "redirect_uri": SPA_URI}


def spa_code(http: testing.TestClient) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    query = {**FLOW, "code_challenge": challenge, "code_challenge_method": "S256"}
    return code_from(authorize(http, query)), verifier


def exchange(http: testing.TestClient, code: str, verifier: str | None) -> testing.Result:
    params = {"grant_type": "authorization_code", "code": code, "redirect_uri": SPA_URI}
    if verifier is not None:
        params["code_verifier"] = verifier
    return token(http, params, auth=SPA)


def test_a_thief_without_the_verifier_revokes_nothing(http: testing.TestClient) -> None:
    code, verifier = spa_code(http)
    victim = exchange(http, code, verifier)
    assert victim.status_code == 200, victim.text
    assert_clean_error(exchange(http, code, None), 400, "invalid_grant")
    _, wrong = pkce_pair()
    assert_clean_error(exchange(http, code, wrong), 400, "invalid_grant")
    assert refresh(http, victim.json["refresh_token"], auth=SPA).status_code == 200


def test_the_client_itself_replaying_revokes(http: testing.TestClient) -> None:
    code, verifier = spa_code(http)
    first = exchange(http, code, verifier)
    assert first.status_code == 200
    assert_clean_error(exchange(http, code, verifier), 400, "invalid_grant")
    assert_clean_error(refresh(http, first.json["refresh_token"], auth=SPA), 400, "invalid_grant")
