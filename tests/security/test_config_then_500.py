"""Issue 18, item 9: what the configuration accepts must work; what cannot work is refused at load.

scrypt at ln=17, r=8 (OWASP's minimum) needs 128 MiB and failed every check against a fixed
128 MiB cap: the memory cap is now sized from each hash's parameters, and parameters beyond the
server's bound are refused by `jwtauth check-config`. A redirect URI with a port above 65535
passed the check and broke the authorize page: it is refused, naming the line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from jwtauth.accounts.hashing import SecretChecker, hash_secret
from jwtauth.config.reader import ConfigError
from jwtauth.config.settings import load_settings
from tests.helpers import DEMO, TOKENS, call


def test_owasp_minimum_scrypt_hashes_and_checks() -> None:
    stored = hash_secret("pw", log_n=17, r=8)
    checker = SecretChecker()
    assert checker.check(stored, "pw") and not checker.check(stored, "wrong")


def test_a_client_with_an_owasp_hash_gets_a_token(make_app: Any, sec_settings: Any) -> None:
    client = dataclasses.replace(sec_settings.clients[0], secret_hash=hash_secret(DEMO[1], log_n=17))
    http = make_app(clients=(client,))
    assert call(http, TOKENS, {"grant_type": "client_credentials"}).status_code == 200


def write(tmp_path: Path, table: str) -> Path:
    path = tmp_path / "jwtauth.toml"
    path.write_text('issuer = "https://auth.example.com"\n' + table)
    return path


def test_scrypt_parameters_beyond_the_memory_bound_are_refused(tmp_path: Path) -> None:
    huge = hash_secret("pw", log_n=10, r=8).replace("ln=10,r=8", "ln=20,r=32")
    path = write(tmp_path, f'[[users]]\nusername = "u"\npassword_hash = "{huge}"\n')
    with pytest.raises(ConfigError, match=r"users\[0\]\.password_hash: .*MiB"):
        load_settings(path, env={})


@pytest.mark.parametrize("uri", ["https://app.example.com:65536/cb", "https://app.example.com:99999/cb"])
def test_a_redirect_uri_port_above_65535_is_refused(tmp_path: Path, uri: str) -> None:
    client = (
        f'[[clients]]\nid = "web"\nsecret_hash = "{hash_secret("s", log_n=10)}"\n'
        f'grant_types = ["authorization_code"]\nredirect_uris = ["{uri}"]\n'
    )
    with pytest.raises(ConfigError, match=r"clients\[0\]\.redirect_uris: .*port"):
        load_settings(write(tmp_path, client), env={})
