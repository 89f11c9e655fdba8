"""Settings from the environment (jwtauth/config/environment.py) and JWTAUTH_HOST/PORT/WORKERS for serve."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from jwtauth.cli import main as cli
from jwtauth.config.defaults import DEFAULTS
from jwtauth.config.environment import overlay, variable
from jwtauth.config.reader import ConfigError
from jwtauth.config.settings import load_settings, parse_settings
from tests.helpers import FIXTURES

ALL = "0.0.0.0"  # noqa: S104  # the wildcard address the warning is about
SCALARS = [key for key, value in DEFAULTS.items() if not isinstance(value, (tuple, list, dict))]


def settings_with(env: dict[str, str], data: dict[str, Any] | None = None) -> Any:
    return parse_settings(data or {}, "settings.toml", env)


def test_a_variable_wins_over_the_file() -> None:
    data = {"lifetimes": {"access_token": 300}, "dpop": {"require_nonce": False}}
    env = {"JWTAUTH_LIFETIMES_ACCESS_TOKEN": "600", "JWTAUTH_DPOP_REQUIRE_NONCE": "true"}
    settings = settings_with(env, data)
    assert settings.access_token_ttl == 600 and settings.dpop_require_nonce is True
    assert settings_with({}, data).access_token_ttl == 300  # the file, when nothing is set
    assert (
        settings_with({"JWTAUTH_LIFETIMES_ACCESS_TOKEN": ""}, data).access_token_ttl == 300
    )  # empty = unset


def test_names_follow_the_dotted_keys() -> None:
    assert variable("lifetimes.access_token") == "JWTAUTH_LIFETIMES_ACCESS_TOKEN"
    assert variable("client_id_metadata.enabled") == "JWTAUTH_CLIENT_ID_METADATA_ENABLED"
    assert variable("issuer") == "JWTAUTH_ISSUER"
    assert settings_with({"JWTAUTH_METRICS_PORT": "9100"}).metrics_port == 9100
    assert (
        settings_with({"JWTAUTH_DEFAULT_AUDIENCE": "https://api.example"}).audience == "https://api.example"
    )


@pytest.mark.parametrize("key", [k for k in SCALARS if DEFAULTS[k] not in (None, "")])
def test_every_scalar_setting_takes_its_default_from_the_environment(key: str) -> None:
    default = DEFAULTS[key]
    text = str(default).lower() if isinstance(default, bool) else str(default)
    assert settings_with({variable(key): text}) == settings_with({})
    assert overlay({}, {variable(key): text})[1] == {key: variable(key)}  # read, not ignored


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"JWTAUTH_LIFETIMES_ACCESS_TOKEN": "soon"},
            "JWTAUTH_LIFETIMES_ACCESS_TOKEN: must be int, got 'soon'",
        ),
        (
            {"JWTAUTH_LIFETIMES_ACCESS_TOKEN": "0"},
            "JWTAUTH_LIFETIMES_ACCESS_TOKEN: must be between 1 and 86400",
        ),
        ({"JWTAUTH_DPOP_REQUIRE_NONCE": "maybe"}, "JWTAUTH_DPOP_REQUIRE_NONCE: must be true or false"),
        ({"JWTAUTH_KEYS_ALGORITHM": "HS256"}, "JWTAUTH_KEYS_ALGORITHM: 'HS256' is not one of"),
        (
            {"JWTAUTH_KEYS_JWKS_MAX_AGE": "900", "JWTAUTH_KEYS_PUBLISH_AHEAD": "600"},
            "JWTAUTH_KEYS_JWKS_MAX_AGE: 900 exceeds keys.publish_ahead 600",
        ),
        ({"JWTAUTH_METRICS_PORT": "70000"}, "JWTAUTH_METRICS_PORT: must be between 1 and 65535"),
    ],
)
def test_a_bad_value_names_the_variable_not_the_file(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_with(env)
    assert str(info.value).startswith(message)


def test_a_file_error_still_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "settings.toml"
    config.write_text("[lifetimes]\naccess_token = 0\n")
    with pytest.raises(ConfigError, match=r"settings.toml: lifetimes.access_token: must be between"):
        load_settings(config, env={"JWTAUTH_DPOP_PROOF_WINDOW": "30"})


# --- serve: JWTAUTH_HOST, JWTAUTH_PORT, JWTAUTH_WORKERS ----------------------------------------------


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, keys_dir: Path) -> dict[str, Any]:
    for name in ("JWTAUTH_REDIS_URL", "JWTAUTH_ISSUER", "JWTAUTH_CONFIG", "JWTAUTH_HOST", "JWTAUTH_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("JWTAUTH_WORKERS", raising=False)
    monkeypatch.setenv("JWTAUTH_KEYS_DIR", str(keys_dir))
    seen: dict[str, Any] = {}
    monkeypatch.setattr("jwtauth.cli.serve.run", lambda factory, **kwargs: seen.update(kwargs))
    return seen


def test_serve_listens_where_the_environment_says(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JWTAUTH_HOST", "127.0.0.2")
    monkeypatch.setenv("JWTAUTH_PORT", "8123")
    monkeypatch.setenv("JWTAUTH_WORKERS", "1")
    assert cli.main(["serve", "--config", str(FIXTURES)]) == 0
    assert (served["host"], served["port"], served["workers"]) == ("127.0.0.2", 8123, 1)
    assert cli.main(["serve", "--config", str(FIXTURES), "--port", "8124"]) == 0
    assert served["port"] == 8124  # a flag wins


@pytest.mark.parametrize(
    ("name", "value"), [("JWTAUTH_PORT", "http"), ("JWTAUTH_PORT", "0"), ("JWTAUTH_WORKERS", "-1")]
)
def test_a_bad_listen_variable_is_one_line(
    served: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
) -> None:
    monkeypatch.setenv(name, value)
    assert cli.main(["serve", "--config", str(FIXTURES)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(f"jwtauth: {name}: must be a number")
    assert not served


def test_all_interfaces_with_a_default_issuer_warns(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="jwtauth"):
        assert cli.main(["serve", "--config", str(FIXTURES), "--host", ALL]) == 0
    assert any("set JWTAUTH_ISSUER to the public URL" in r.getMessage() for r in caplog.records)
    caplog.clear()
    monkeypatch.setenv("JWTAUTH_ISSUER", "https://auth.example.com")
    with caplog.at_level(logging.WARNING, logger="jwtauth"):
        assert cli.main(["serve", "--config", str(FIXTURES), "--host", ALL]) == 0
    assert not [r for r in caplog.records if "JWTAUTH_ISSUER" in r.getMessage()]
