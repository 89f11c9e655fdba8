"""Static claims of clients and users: never a registered claim, never large, never beyond the access token.

`[[clients]] claims` and `[[users]] claims` are read at load; a name the server sets (RFC 9068
§2.2, RFC 7519 §4.1, RFC 9449 §6, OpenID Connect Core §2) or a value past 1 KiB of JSON is a
config error. Even a record that skipped that check (built in code) cannot replace a registered
claim: those are written last. A user's static claims are not released by any scope (Core §5.4),
so they stay out of id_tokens and userinfo.
"""

from __future__ import annotations

import dataclasses
import tomllib

import pytest

from jwtauth.config.clients import MAX_CLAIMS_BYTES, RESERVED_CLAIMS
from jwtauth.config.reader import ConfigError
from jwtauth.config.settings import Settings, parse_settings
from tests.helpers import USER, MakeApp, cheap_user, claims_of, login
from tests.oidc.flow import code_login, verified_id_token

HASH = "scrypt$ln=10,r=8,p=1$f47Wn4iRWs5go498j_TpwQ$wrDwRrHlILVUJQqHeDsnUB1LvzVqXy5rh8PhutaduvY"
CLIENT = f'[[clients]]\nid = "c"\nsecret_hash = "{HASH}"\n'
USER_TABLE = f'[[users]]\nusername = "u"\npassword_hash = "{HASH}"\n'
TABLES = {"clients": CLIENT, "users": USER_TABLE}


def load(text: str) -> Settings:
    return parse_settings(tomllib.loads('issuer = "https://auth.example.com"\n' + text), "settings.toml", {})


@pytest.mark.parametrize("table", sorted(TABLES))
@pytest.mark.parametrize("name", sorted(RESERVED_CLAIMS))
def test_a_registered_claim_is_refused_at_load(table: str, name: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(TABLES[table] + f'claims = {{ "{name}" = "x" }}\n')
    assert str(info.value).startswith(f"settings.toml: {table}[0].claims: '{name}' is set by the server")


@pytest.mark.parametrize("table", sorted(TABLES))
def test_oversized_or_non_json_claims_are_refused_at_load(table: str) -> None:
    fits = "x" * (MAX_CLAIMS_BYTES - len('{"big":""}'))
    assert load(TABLES[table] + f'claims = {{ big = "{fits}" }}\n')  # exactly the cap: taken
    for value, problem in [
        (f'"{fits}x"', f"at most {MAX_CLAIMS_BYTES}"),
        ("1979-05-27T07:32:00Z", "is not a JSON value"),
        ('"tenant"', "must be a table"),
    ]:
        claims = f"claims = {{ big = {value} }}\n" if "must" not in problem else f"claims = {value}\n"
        with pytest.raises(ConfigError, match=problem):
            load(TABLES[table] + claims)


def test_a_user_record_built_in_code_still_cannot_replace_registered_claims(
    make_app: MakeApp, settings: Settings
) -> None:
    forged = {"sub": "admin", "scope": "admin", "client_id": "other", "iss": "https://evil.example", "x": 1}
    user = dataclasses.replace(settings.users[0], static_claims=forged)
    claims = claims_of(login(make_app(users=(user,))).json["access_token"])
    assert (claims["sub"], claims["client_id"], claims["iss"]) == (USER, "testclient", "http://testserver")
    assert claims["scope"] == "read write" and claims["x"] == 1


def test_a_users_static_claims_stay_out_of_the_id_token_and_userinfo(
    make_app: MakeApp, settings: Settings
) -> None:
    user = dataclasses.replace(settings.users[0], static_claims={"department": "sales"})
    http = make_app(users=(user,))
    body = code_login(http).json  # openid profile email read
    assert claims_of(body["access_token"])["department"] == "sales"
    assert "department" not in verified_id_token(http, body["id_token"])
    info = http.simulate_get("/api/v1/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200 and "department" not in info.json and info.json["email"]


def test_one_users_claims_never_reach_another_users_tokens(make_app: MakeApp, settings: Settings) -> None:
    alice = dataclasses.replace(cheap_user("alice", "alice-pw"), static_claims={"clearance": "high"})
    http = make_app(users=(alice,))
    assert claims_of(login(http, "alice", "alice-pw").json["access_token"])["clearance"] == "high"
    assert "clearance" not in claims_of(login(http).json["access_token"])
