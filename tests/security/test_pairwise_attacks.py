"""Pairwise subjects (Core §8.1, §17.3): a pairwise client never learns who else knows the user.

Correlation is the attack: two relying parties comparing the `sub` (or anything else that names
the user) they hold. Nothing a pairwise client receives may carry the public sub or the
username, and a pairwise sub of one client means nothing to another.
"""

from __future__ import annotations

import json
from typing import Any

from falcon import testing

from jwtauth.config.settings import Settings
from jwtauth.oidc.pairwise import fixed_subjects
from tests.helpers import USER, MakeApp, claims_of, client_like, introspect, token
from tests.oidc.browser import Browser, answer
from tests.oidc.flow import OPENID_QUERY

SALT = "fedcba9876543210fedcba9876543210"
PUBLIC_SUB = "5f0c1d2e-8a4b-4c6d-9e7f-0a1b2c3d4e5f"
A_URI = "https://a.example.com/cb"
# Without profile/email: those claims are released on purpose and may well name the user.
A = {**OPENID_QUERY, "client_id": "pa", "redirect_uri": A_URI, "scope": "openid read"}
PA = ("pa", "pasecret")


def pairwise_app(make_app: MakeApp, settings: Settings) -> testing.TestClient:
    pa = client_like(settings, "pa", secret=PA[1], redirect_uris=(A_URI,), subject_type="pairwise")
    return make_app(clients=(pa,), pairwise_salt=SALT)


def test_nothing_a_pairwise_client_receives_names_the_user(make_app: MakeApp, settings: Settings) -> None:
    http = pairwise_app(make_app, settings)
    code = answer(Browser(http).sign_in(A))["code"]
    body = token(http, {"grant_type": "authorization_code", "code": code}, auth=PA).json
    userinfo = http.simulate_get(
        "/api/v1/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    inspected = introspect(http, body["access_token"], auth=PA).json
    seen: list[Any] = [
        claims_of(body["id_token"]), claims_of(body["access_token"]), userinfo.json, inspected,
    ]  # fmt: skip
    text = json.dumps(seen)
    assert inspected["active"] is True and userinfo.status_code == 200
    assert PUBLIC_SUB not in text and USER not in text, text


def test_another_clients_pairwise_sub_is_no_user_at_userinfo(make_app: MakeApp, settings: Settings) -> None:
    # An access token of a public client whose sub is a pairwise sub names nobody: the lookup
    # for a public client is by username, never through another client's pairwise table.
    http = pairwise_app(make_app, settings)
    code = answer(Browser(http).sign_in(A))["code"]
    pairwise_sub = claims_of(
        token(http, {"grant_type": "authorization_code", "code": code}, auth=PA).json["id_token"]
    )["sub"]
    subjects = fixed_subjects(
        (client_like(settings, "pa", redirect_uris=(A_URI,), subject_type="pairwise"), settings.clients[0]),
        settings.users,
        SALT,
    )
    assert subjects.user_of_access("testclient", pairwise_sub) is None
    assert subjects.user_of_access("pa", USER) is None  # and a username is no pairwise sub
    user = subjects.user_of_access("pa", pairwise_sub)
    assert user is not None and user.username == USER
