"""Pairwise subject identifiers (OpenID Connect Core §8.1): settings, sub per sector, consistency."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from falcon import testing

from jwtauth.config.reader import ConfigError
from jwtauth.config.settings import Settings, parse_settings
from jwtauth.oidc.backchannel import BackChannel
from jwtauth.oidc.pairwise import fixed_subjects, pairwise_subject, sector_identifier
from tests.helpers import FIXTURES, MakeApp, claims_of, client_like, token
from tests.oidc.browser import Browser, answer
from tests.oidc.flow import OPENID_QUERY, verified_id_token
from tests.oidc.test_logout import Counted, Inline

SALT = "0123456789abcdef0123456789abcdef"
WWW = 'redirect_uris = ["https://www.example.com"]'
PAIRWISE = 'subject_type = "pairwise"'
WITH_SALT = f'[oidc]\npairwise_salt = "{SALT}"\n'
PUBLIC_SUB = "5f0c1d2e-8a4b-4c6d-9e7f-0a1b2c3d4e5f"  # the demo user's, from the fixtures
A_URI, B_URI = "https://a.example.com/cb", "https://b.example.net/cb"
A = {**OPENID_QUERY, "client_id": "pa", "redirect_uri": A_URI}
B = {**OPENID_QUERY, "client_id": "pb", "redirect_uri": B_URI}


@pytest.fixture
def http(make_app: MakeApp, settings: Settings) -> testing.TestClient:
    pa = client_like(settings, "pa", secret="pasecret", redirect_uris=(A_URI,), subject_type="pairwise")
    pb = client_like(
        settings, "pb", secret="pbsecret", redirect_uris=(B_URI, "https://b.example.net/other"),
        subject_type="pairwise",
    )  # fmt: skip
    return make_app(clients=(pa, pb), pairwise_salt=SALT)


def code_tokens(
    http: testing.TestClient, result: testing.Result, client: tuple[str, str], **params: str
) -> Any:
    sent = {"grant_type": "authorization_code", "code": answer(result)["code"], **params}
    reply = token(http, sent, auth=client)
    assert reply.status_code == 200, reply.text
    return reply.json


def userinfo_sub(http: testing.TestClient, access_token: str) -> str:
    result = http.simulate_get("/api/v1/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    assert result.status_code == 200, result.text
    return str(result.json["sub"])


def test_sector_identifier_is_the_one_host_of_the_redirect_uris() -> None:
    assert (
        sector_identifier(["https://App.example.com/a", "https://app.example.com:8443/b"])
        == "app.example.com"
    )
    assert sector_identifier(["https://a.example.com/cb", "https://b.example.com/cb"]) is None
    assert sector_identifier(["com.example.app:/cb"]) is None  # no host: no sector
    assert sector_identifier([]) is None


def test_the_pairwise_sub_depends_on_sector_user_and_salt() -> None:
    one = pairwise_subject(SALT, "a.example.com", "user-1")
    assert one == pairwise_subject(SALT, "a.example.com", "user-1") and len(one) == 43
    others = {
        pairwise_subject(SALT, "b.example.com", "user-1"),
        pairwise_subject(SALT, "a.example.com", "user-2"),
        pairwise_subject(SALT[::-1], "a.example.com", "user-1"),
    }
    assert one not in others and len(others) == 3


def test_two_pairwise_clients_see_different_subs_and_each_sees_one_sub_everywhere(
    http: testing.TestClient,
) -> None:
    browser = Browser(http)
    first = code_tokens(http, browser.sign_in(A), ("pa", "pasecret"))
    a_sub = verified_id_token(http, first["id_token"], "pa")["sub"]
    # The same sub in userinfo and in the client's access token (Core §5.3.2, §8.1).
    assert userinfo_sub(http, first["access_token"]) == a_sub
    assert claims_of(first["access_token"])["sub"] == a_sub
    browser.get(B)
    second = code_tokens(http, browser.post(), ("pb", "pbsecret"), redirect_uri=B_URI)
    b_sub = verified_id_token(http, second["id_token"], "pb")["sub"]
    assert userinfo_sub(http, second["access_token"]) == b_sub == claims_of(second["access_token"])["sub"]
    assert len({a_sub, b_sub, PUBLIC_SUB}) == 3  # neither pairwise sub is the public one
    # Stable: a later login of the same client, and its refreshed id_token, carry the same sub.
    again = code_tokens(http, browser.get(A), ("pa", "pasecret"))
    assert verified_id_token(http, again["id_token"], "pa")["sub"] == a_sub
    refreshed = token(
        http,
        {"grant_type": "refresh_token", "refresh_token": again["refresh_token"]},
        auth=("pa", "pasecret"),
    ).json
    assert verified_id_token(http, refreshed["id_token"], "pa")["sub"] == a_sub
    assert claims_of(refreshed["access_token"])["sub"] == a_sub
    # A public client keeps seeing the public sub, and the username in its access tokens.
    browser.get(OPENID_QUERY)  # consent for this client, in the same session
    public = code_tokens(http, browser.post(), ("testclient", "testpassword"))
    assert verified_id_token(http, public["id_token"])["sub"] == PUBLIC_SUB
    assert claims_of(public["access_token"])["sub"] == "testuser@example.com"


def test_a_pairwise_id_token_hint_names_the_signed_in_user(http: testing.TestClient) -> None:
    browser = Browser(http)
    hint = code_tokens(http, browser.sign_in(A), ("pa", "pasecret"))["id_token"]
    assert answer(browser.get({**A, "prompt": "none", "id_token_hint": hint}))["code"]
    # RP-Initiated Logout: the hint names this user, so no confirmation is asked.
    result = http.simulate_get(
        "/logout",
        params={"id_token_hint": hint},
        headers={"Cookie": "; ".join(f"{k}={v}" for k, v in browser.cookies.items())},
    )
    assert result.status_code == 200 and 'name="logout"' not in result.text


def test_back_channel_logout_tokens_carry_the_clients_pairwise_sub(settings: Settings, keyring: Any) -> None:
    pa = client_like(
        settings, "pa", redirect_uris=(A_URI,), subject_type="pairwise", backchannel_logout_uri=A_URI
    )
    public = client_like(settings, "pub", backchannel_logout_uri=A_URI)
    subjects = fixed_subjects((pa, public), settings.users, SALT)
    sent: list[dict[str, Any]] = []

    def deliver(url: str, form: dict[str, str], timeout: float) -> int:
        sent.append(claims_of(form["logout_token"]))
        return 200

    channel = BackChannel(
        "http://testserver", keyring, Counted(), deliver=deliver, executor=Inline(), subjects=subjects
    )
    assert channel.notify([pa, public], sub=PUBLIC_SUB, sid="x") == 2
    pairwise = pairwise_subject(SALT, "a.example.com", PUBLIC_SUB)
    assert [(c["aud"], c["sub"]) for c in sent] == [("pa", pairwise), ("pub", PUBLIC_SUB)]
    assert subjects.public("pa", pairwise) == PUBLIC_SUB
    assert subjects.public("pa", PUBLIC_SUB) is None  # a public sub is not a pairwise one


def test_discovery_lists_pairwise_only_with_a_salt(http: testing.TestClient, make_app: MakeApp) -> None:
    with_salt = http.simulate_get("/.well-known/openid-configuration").json
    assert with_salt["subject_types_supported"] == ["public", "pairwise"]
    without = make_app().simulate_get("/.well-known/openid-configuration").json
    assert without["subject_types_supported"] == ["public"]


def fixture_with(extra: str, client: str) -> dict[str, Any]:
    text = (FIXTURES).read_text()
    text = text.replace(WWW, client, 1)
    return tomllib.loads(text + "\n" + extra)  # a table header ends the one before


@pytest.mark.parametrize(
    ("extra", "client", "message"),
    [
        (
            "",
            f"{WWW}\n{PAIRWISE}",
            "oidc.pairwise_salt: is required",
        ),
        ('[oidc]\npairwise_salt = "short"\n', WWW, "at least 32"),
        (
            WITH_SALT,
            'redirect_uris = ["https://a.example.com", "https://b.example.com"]\nsubject_type = "pairwise"',
            "share one host",
        ),
        (
            "",
            f'{WWW}\nsubject_type = "secret"',
            "not one of public, pairwise",
        ),
    ],
)
def test_settings_refuse_a_pairwise_client_they_cannot_serve(extra: str, client: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings(fixture_with(extra, client), "test.toml", {})


def test_settings_accept_a_pairwise_client_with_a_salt() -> None:
    data = fixture_with(
        WITH_SALT,
        f"{WWW}\n{PAIRWISE}",
    )
    settings = parse_settings(data, "test.toml", {})
    assert settings.pairwise_salt == SALT and settings.clients[0].subject_type == "pairwise"
    assert SALT not in repr(settings)
