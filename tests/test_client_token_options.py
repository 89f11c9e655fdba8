"""Per-client access-token lifetimes and static claims ([[clients]] access_token_lifetime, claims)."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from jwtauth.config.reader import ConfigError
from jwtauth.config.settings import CLOCK_LEEWAY, Settings, parse_settings
from tests.helpers import MakeApp, basic, claims_of, client_like

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
