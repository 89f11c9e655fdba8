"""Per-client token lifetimes and static claims, per-user static claims (config/clients.py TOKEN_OPTIONS).

[[clients]] access_token_lifetime, refresh_token_lifetime, refresh_absolute_lifetime, claims;
[[users]] claims.
"""

from __future__ import annotations

import dataclasses
import tomllib
from typing import Any

import pytest

from jwtauth.config.reader import ConfigError
from jwtauth.config.settings import CLOCK_LEEWAY, Settings, parse_settings
from tests.deviceflow import CONSOLE, CONSOLE_SECRET, approve, device_clients, poll, started
from tests.helpers import (
    OTHER,
    Clock,
    MakeApp,
    assert_error,
    basic,
    claims_of,
    client_like,
    introspect,
    login,
    refresh,
    tokens_of,
)
from tests.oidc.flow import code_login

CLIENT = """
issuer = "https://auth.example.com"
[[clients]]
id = "reports"
secret_hash = "scrypt$ln=10,r=8,p=1$f47Wn4iRWs5go498j_TpwQ$wrDwRrHlILVUJQqHeDsnUB1LvzVqXy5rh8PhutaduvY"
grant_types = ["client_credentials"]
"""


def parse(extra: str) -> Settings:
    return parse_settings(tomllib.loads(CLIENT + extra), "settings.toml", {})


def test_a_client_lifetime_and_claims_reach_its_tokens(make_app: MakeApp, settings: Settings) -> None:
    tuned = client_like(
        settings,
        "testclient",
        secret="testpassword",
        access_token_lifetime=120,
        claims={"tenant": "acme", "tier": 2},
    )
    http = make_app(clients=(tuned,))
    result = http.simulate_post("/api/v1/tokens", body="grant_type=client_credentials", headers=basic())
    assert result.status_code == 200 and result.json["expires_in"] == 120
    claims = claims_of(result.json["access_token"])
    assert claims["exp"] - claims["iat"] == 120
    assert (claims["tenant"], claims["tier"], claims["client_id"]) == ("acme", 2, "testclient")


def test_the_horizon_follows_the_longest_lifetime() -> None:
    assert parse("").token_horizon == 900 + CLOCK_LEEWAY
    assert parse("access_token_lifetime = 3600\n").token_horizon == 3600 + CLOCK_LEEWAY
    assert parse("access_token_lifetime = 60\n").token_horizon == 900 + CLOCK_LEEWAY


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('claims = { sub = "admin" }\n', "clients[0].claims: 'sub' is set by the server"),
        ('claims = { scope = "admin" }\n', "clients[0].claims: 'scope' is set by the server"),
        (
            "claims = { big = '" + "x" * 2000 + "' }\n",
            "clients[0].claims: take 2012 bytes as JSON; at most 1024",
        ),
        ("claims = { when = 2030-01-01T00:00:00Z }\n", "clients[0].claims: datetime"),
        ('claims = "tenant"\n', "clients[0].claims: must be a table"),
        ("access_token_lifetime = 0\n", "clients[0].access_token_lifetime: must be between 1 and 86400"),
        ("refresh_token_lifetime = 0\n", "clients[0].refresh_token_lifetime: must be between 1"),
        ("refresh_absolute_lifetime = -5\n", "clients[0].refresh_absolute_lifetime: must be between 1"),
        ('refresh_token_lifetime = "1h"\n', "clients[0].refresh_token_lifetime: must be"),
        (
            "refresh_token_lifetime = 200\nrefresh_absolute_lifetime = 100\n",
            "clients[0].refresh_token_lifetime: 200 exceeds refresh_absolute_lifetime 100",
        ),
        (
            "refresh_token_lifetime = 2592001\n",
            "clients[0].refresh_token_lifetime: 2592001 exceeds [lifetimes] refresh_absolute 2592000",
        ),
    ],
)
def test_bad_options_are_refused_at_load(extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(extra)
    assert str(info.value).startswith("settings.toml: " + message.split(": ", 1)[0]), info.value
    assert message.split(": ", 1)[1].split(" ")[0] in str(info.value)


def test_options_parse(settings: Any) -> None:
    client = parse('access_token_lifetime = 300\nclaims = { tenant = "acme", flags = ["a", "b"] }\n').clients[
        0
    ]
    assert client.access_token_lifetime == 300 and client.claims == {"tenant": "acme", "flags": ["a", "b"]}


def test_refresh_options_parse_and_fall_back_to_lifetimes() -> None:
    settings = parse("refresh_token_lifetime = 3600\nrefresh_absolute_lifetime = 86400\n")
    client = settings.clients[0]
    assert (client.refresh_token_lifetime, client.refresh_absolute_lifetime) == (3600, 86400)
    assert settings.refresh_lifetimes(client) == (3600, 86400)
    # Unset: [lifetimes]' (14 and 30 days); a shorter absolute caps the default idle lifetime.
    assert parse("").refresh_lifetimes(parse("").clients[0]) == (14 * 86400, 30 * 86400)
    capped = parse("refresh_absolute_lifetime = 3600\n")
    assert capped.refresh_lifetimes(capped.clients[0]) == (3600, 3600)
    # Refresh tokens are not signed: their lifetimes set no key-retirement horizon.
    assert parse("refresh_absolute_lifetime = 90000000\n").token_horizon == 900 + CLOCK_LEEWAY


def test_a_clients_refresh_lifetimes_bind_the_families_of_its_grants(
    make_app: MakeApp, settings: Settings, clock: Clock
) -> None:
    lifetimes = {"refresh_token_lifetime": 100, "refresh_absolute_lifetime": 250}
    short = client_like(settings, "testclient", secret="testpassword", **lifetimes)
    http = make_app(clients=(short, client_like(settings, OTHER[0], secret=OTHER[1])))
    # The authorization code grant starts a family on the client's idle lifetime...
    started = code_login(http).json["refresh_token"]
    assert introspect(http, started).json["exp"] == int(clock.now) + 100
    # ...another client keeps [lifetimes]' 14 days.
    _, other = tokens_of(login(http, auth=OTHER))
    assert introspect(http, other, auth=OTHER).json["exp"] == int(clock.now) + 14 * 86400
    # The password grant too, and unused for 100 s the family is over.
    _, idle = tokens_of(login(http))
    clock.now += 100
    assert_error(refresh(http, idle), 400, "invalid_grant")
    # Each rotation extends it by 100 s, never past 250 s after sign-in.
    _, token = tokens_of(login(http))
    signed_in = int(clock.now)
    clock.now += 99
    _, token = tokens_of(refresh(http, token))
    assert introspect(http, token).json["exp"] == int(clock.now) + 100
    clock.now += 99
    _, token = tokens_of(refresh(http, token))
    assert introspect(http, token).json["exp"] == signed_in + 250
    clock.now += 52
    assert_error(refresh(http, token), 400, "invalid_grant")


def test_a_device_clients_refresh_lifetime_binds_its_families(
    make_app: MakeApp, settings: Settings, clock: Clock
) -> None:
    tv, console, plain = device_clients(settings)
    http = make_app(clients=(tv, dataclasses.replace(console, refresh_token_lifetime=300), plain))
    body = started(http, CONSOLE, scope="read")
    assert approve(http, body["user_code"]).status_code == 200
    issued = poll(http, body["device_code"], CONSOLE)
    assert issued.status_code == 200, issued.text
    inspected = introspect(http, issued.json["refresh_token"], auth=(CONSOLE, CONSOLE_SECRET)).json
    assert inspected["exp"] == int(clock.now) + 300


def test_a_users_claims_reach_the_access_tokens_issued_for_them(
    make_app: MakeApp, settings: Settings
) -> None:
    tuned = client_like(settings, "testclient", secret="testpassword", claims={"tenant": "acme", "tier": 2})
    user = dataclasses.replace(settings.users[0], static_claims={"department": "sales", "tier": 3})
    http = make_app(clients=(tuned,), users=(user,))
    claims = claims_of(login(http).json["access_token"])
    # The user's claims beside the client's; on a name both set, the user's (the more specific).
    assert (claims["department"], claims["tier"], claims["tenant"]) == ("sales", 3, "acme")
    assert claims["sub"] == user.username and claims["client_id"] == "testclient"
    coded = claims_of(code_login(http).json["access_token"])
    assert coded["department"] == "sales"
    # A client's own token (client_credentials) is about no user: only the client's claims.
    result = http.simulate_post("/api/v1/tokens", body="grant_type=client_credentials", headers=basic())
    own = claims_of(result.json["access_token"])
    assert own["tier"] == 2 and "department" not in own


USERS = """
[[users]]
username = "alice"
password_hash = "scrypt$ln=10,r=8,p=1$f47Wn4iRWs5go498j_TpwQ$wrDwRrHlILVUJQqHeDsnUB1LvzVqXy5rh8PhutaduvY"
"""


def test_user_claims_parse() -> None:
    settings = parse(USERS + 'claims = { department = "sales", levels = [1, 2] }\nemail = "a@example.com"\n')
    (user,) = settings.users
    assert user.static_claims == {"department": "sales", "levels": [1, 2]}
    assert user.claims == {"email": "a@example.com"}  # the standard claims stay apart (Core §5.1)
    assert parse(USERS).users[0].static_claims == {}
