"""Issue 18, item 2: failing client authentications cannot buy scrypt from the server.

Before any hashing, failed client authentications are counted per address and per client id
in the shared counters; past the limit an attempt that would cost scrypt is refused (429
`slow_down`) for unknown and known clients alike. Secrets that cost nothing to check (a fast
keyed hash of a generated 256-bit secret, or one this process already proved) are always
checked, so a flood does not lock a working client out. `jwtauth clients add` stores its
generated secrets under the fast hash; human-chosen secrets keep scrypt.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import redis
from falcon import testing
from redis.backoff import NoBackoff
from redis.retry import Retry

from jwtauth.accounts.hashing import fast_hash, hash_secret
from jwtauth.app import create_app
from jwtauth.config.settings import Settings, load_settings
from tests.helpers import DEMO, TOKENS, assert_clean_error, call, client_like
from tests.support import free_port

CC = {"grant_type": "client_credentials"}
FLOOD = "198.51.100.66"


def cc(http: testing.TestClient, auth: tuple[str, str], addr: str = FLOOD) -> testing.Result:
    return call(http, TOKENS, CC, auth=auth, remote_addr=addr)


@pytest.mark.parametrize("auth", [("nobody", "guess"), ("testclient", "guess")])
def test_a_flood_from_one_address_costs_no_scrypt_after_the_limit(
    http: testing.TestClient, sec_settings: Settings, derives: list[Any], auth: tuple[str, str]
) -> None:
    limit = sec_settings.client_auth_failures
    assert_clean_error(cc(http, (auth[0], auth[1])), 401, "invalid_client")
    derives.clear()  # (the first unknown id also builds the checker's dummy hash)
    for i in range(1, limit):
        assert_clean_error(cc(http, (auth[0], f"{auth[1]}{i}")), 401, "invalid_client")
    assert len(derives) == limit - 1
    for i in range(50):
        result = cc(http, (auth[0], f"more{i}"))
        assert_clean_error(result, 429, "slow_down")
        assert int(result.headers["Retry-After"]) >= 1
    assert len(derives) == limit - 1  # nothing hashed past the limit


def test_unknown_and_known_clients_are_refused_alike_past_the_limit(
    http: testing.TestClient, sec_settings: Settings
) -> None:
    for i in range(sec_settings.client_auth_failures):
        cc(http, ("nobody", f"g{i}"))
    unknown, known = cc(http, ("nobody2", "x")), cc(http, ("testclient", "x"))
    assert (unknown.status_code, unknown.json) == (known.status_code, known.json)


def test_one_client_id_guessed_from_many_addresses_is_limited(
    http: testing.TestClient, sec_settings: Settings, derives: list[Any]
) -> None:
    for i in range(sec_settings.client_auth_failures):
        cc(http, ("other", f"g{i}"), addr=f"203.0.113.{i}")
    derives.clear()
    assert_clean_error(cc(http, ("other", "again"), addr="203.0.113.200"), 429, "slow_down")
    assert derives == []


def test_a_proven_secret_still_works_from_a_flooded_address(
    http: testing.TestClient, sec_settings: Settings
) -> None:
    assert cc(http, DEMO, addr="10.0.0.1").status_code == 200  # proven in this process
    for i in range(sec_settings.client_auth_failures + 5):
        cc(http, ("testclient", f"g{i}"))
    assert cc(http, DEMO).status_code == 200


def test_a_fast_hashed_secret_costs_no_scrypt_and_is_never_locked(
    make_app: Any, sec_settings: Settings, derives: list[Any]
) -> None:
    generated = "k" * 43
    fast = dataclasses.replace(client_like(sec_settings, "gen"), secret_hash=fast_hash(generated))
    http = make_app(clients=(fast,))
    for i in range(sec_settings.client_auth_failures + 5):
        cc(http, ("testclient", f"g{i}"))
        cc(http, ("gen", f"g{i}"))
    derives.clear()
    assert cc(http, ("gen", generated)).status_code == 200
    assert_clean_error(cc(http, ("gen", "wrong"), addr="10.0.0.2"), 401, "invalid_client")
    assert derives == []


def test_clients_add_stores_a_fast_hash_and_users_keep_scrypt(tmp_path: Path) -> None:
    from jwtauth.cli.main import main

    config = tmp_path / "jwtauth.toml"
    assert main(["clients", "add", "svc", "--config", str(config)]) in (0, None)
    loaded = load_settings(config, env={})
    assert loaded.clients[0].secret_hash is not None
    assert loaded.clients[0].secret_hash.startswith("hmac-sha256$")
    assert hash_secret("a human password").startswith("scrypt$")


def test_a_fast_hash_is_refused_for_a_user_password(tmp_path: Path) -> None:
    from jwtauth.config.reader import ConfigError

    config = tmp_path / "jwtauth.toml"
    config.write_text(f'[[users]]\nusername = "u"\npassword_hash = "{fast_hash("pw")}"\n')
    with pytest.raises(ConfigError, match="password_hash"):
        load_settings(config, env={})


def test_client_credentials_still_works_with_the_store_down(
    sec_settings: Settings, keyring: Any
) -> None:
    """The counters live in Redis; client_credentials needs none, so an outage opens the gate."""
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    http = testing.TestClient(create_app(sec_settings, keyring, dead))
    assert cc(http, DEMO).status_code == 200
