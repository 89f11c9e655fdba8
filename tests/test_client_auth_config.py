"""Client keys, PAR and profile fields of [[clients]] (jwtauth/config/client_auth.py) and the CLI flags."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jwtauth.config.reader import ConfigError
from jwtauth.config.settings import load_settings, parse_settings
from tests.assertionkit import ClientKey, key_client
from tests.helpers import FIXTURES

KEY = ClientKey(kid="k1")


def test_a_key_client_is_confidential_without_a_secret() -> None:
    client = key_client("bank", KEY.jwks())
    assert client.uses_keys and not client.public and client.secret_hash is None
    assert json.loads(client.jwks or "") == KEY.jwks()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"jwks": {"keys": []}}, "non-empty keys"),
        ({"jwks": {"keys": [{**KEY.jwk, "d": "x"}]}}, "private key material"),
        ({"jwks": {"keys": [{k: v for k, v in KEY.jwk.items() if k != "kid"}]}}, "needs a kid"),
        ({"jwks": {"keys": [{**KEY.jwk, "alg": "HS256"}]}}, "not a usable signature key"),
        ({"jwks": {"keys": [KEY.jwk, KEY.jwk]}}, "not a usable signature key"),
        ({"jwks_uri": "http://keys.example.com/jwks"}, "must be an https URL"),
        ({"jwks_uri": "https://u:p@keys.example.com/jwks"}, "must be an https URL"),
        ({"jwks_uri": "https://keys.example.com/jwks", "jwks": KEY.jwks()}, "not both"),
        ({"secret_hash": "SECRET"}, "has no secret"),
        ({"public": True, "grant_types": ["authorization_code"]}, "has no secret and is not public"),
        ({"profile": "fapi1"}, "unknown profile"),
        ({"profile": "fapi2", "grant_types": ["authorization_code", "implicit"]}, "fapi2 refuses implicit"),
        ({"profile": "fapi2", "grant_types": ["password"]}, "fapi2 refuses password"),
    ],
)
def test_bad_key_fields_name_the_line(changes: dict[str, Any], message: str) -> None:
    table = {"jwks": KEY.jwks(), **changes}
    if table.get("secret_hash") == "SECRET":
        table["secret_hash"] = _hash()
    jwks = table.pop("jwks", None)
    with pytest.raises(ConfigError, match=message):
        key_client("bank", jwks, **table)


def test_a_secret_client_cannot_take_the_fapi2_profile() -> None:
    data = {"clients": [{"id": "c", "secret_hash": _hash(), "profile": "fapi2"}]}
    with pytest.raises(ConfigError, match="fapi2 needs private_key_jwt"):
        parse_settings(data, "<test>", {})


def test_fapi2_turns_on_par_pkce_and_dpop() -> None:
    client = key_client("bank", KEY.jwks(), profile="fapi2", grant_types=["authorization_code"])
    assert client.fapi2 and client.require_par and client.require_pkce and client.require_dpop


def test_par_and_assertion_settings() -> None:
    settings = parse_settings(
        {"par": {"require": True, "lifetime": 30}, "client_auth": {"accept_token_endpoint_audience": True}},
        "<test>",
        {},
    )
    assert settings.par_required and settings.par_lifetime == 30 and settings.accept_token_endpoint_audience
    with pytest.raises(ConfigError, match="development only"):
        parse_settings(
            {"issuer": "https://as.example.com", "client_auth": {"allow_insecure_loopback": True}}, "x", {}
        )
    with pytest.raises(ConfigError, match=r"par\.lifetime"):
        parse_settings({"par": {"lifetime": 0}}, "x", {})


def _hash() -> str:
    return load_settings(FIXTURES, env={}).clients[0].secret_hash or ""


def test_clients_add_with_a_jwks_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from jwtauth.cli import main as cli

    path = tmp_path / "settings.toml"
    path.write_bytes(FIXTURES.read_bytes())
    jwks_file = tmp_path / "bank.jwks.json"
    jwks_file.write_text(json.dumps(KEY.jwk))  # one JWK is read as the set of that key
    argv = ["clients", "add", "bank", "--config", str(path), "--jwks-file", str(jwks_file)]
    status = cli.main([*argv, "--grant", "authorization_code", "--redirect-uri", "https://rp.example.com/cb"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "client_secret" not in out and out.strip() == "client_id: bank"
    status = cli.main(["clients", "add", "fapi", "--config", str(path), "--jwks-uri", "https://rp.example.com/j",
                       "--profile", "fapi2", "--grant", "authorization_code", "--redirect-uri",
                       "https://rp.example.com/cb"])  # fmt: skip
    assert status == 0, capsys.readouterr().err
    clients = {c.client_id: c for c in load_settings(path, env={}).clients}
    assert json.loads(clients["bank"].jwks or "") == {"keys": [KEY.jwk]} and not clients["bank"].require_par
    assert clients["fapi"].fapi2 and clients["fapi"].jwks_uri == "https://rp.example.com/j"


def test_clients_add_refuses_a_private_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from jwtauth.cli import main as cli

    path = tmp_path / "settings.toml"
    path.write_bytes(FIXTURES.read_bytes())
    before = path.read_bytes()
    jwks_file = tmp_path / "private.json"
    jwks_file.write_text(json.dumps({"keys": [{**KEY.jwk, "d": "secret-half"}]}))
    status = cli.main(["clients", "add", "bank", "--config", str(path), "--jwks-file", str(jwks_file)])
    _, err = capsys.readouterr()
    assert status == 2 and "private key material" in err and "secret-half" not in err
    assert path.read_bytes() == before
