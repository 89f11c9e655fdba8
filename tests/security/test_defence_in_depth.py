"""Issue 18, item 10: defence in depth.

- The code exchange re-checks the scope and audience of the Redis record against the client's
  configuration: Redis contents alone cannot widen a grant.
- Introspection checks the user: a removed user's tokens are inactive at once.
- A client id equal to a user's name or sub would make `sub` ambiguous: refused at load.
- A deeply nested JOSE header at introspection is a clean `{"active": false}`, never a 500.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from jwtauth.accounts.hashing import hash_secret
from jwtauth.config.reader import ConfigError
from jwtauth.config.settings import load_settings
from jwtauth.store import codes
from tests.authflow import authorize, code_from
from tests.helpers import PEPPER, README_QUERY, USER, call, introspect, login, tokens_of


def tamper_code(store: Any, **changes: Any) -> None:
    """Widen a stored code record as one who holds the pepper too (the check must not trust Redis)."""
    (key,) = [k for k in store.scan_iter() if b"{c:" in k and not k.endswith(b":used")]
    bound = key.decode().rpartition("{c:")[2].rstrip("}")
    record = json.loads(PEPPER.open(codes.LABEL, store.hget(key, "data").decode(), bound))
    store.hset(key, "data", PEPPER.seal(codes.LABEL, json.dumps({**record, **changes}), bound))


def exchange(http: testing.TestClient, code: str) -> testing.Result:
    params = {"grant_type": "authorization_code", "code": code, "redirect_uri": README_QUERY["redirect_uri"]}
    return call(http, "/api/v1/tokens", params)


@pytest.mark.parametrize(
    "changes", [{"scope": "read write admin"}, {"audience": ["https://elsewhere.example"]}]
)
def test_a_code_record_wider_than_the_client_is_refused(
    http: testing.TestClient, store: Any, changes: dict[str, Any]
) -> None:
    code = code_from(authorize(http, README_QUERY))
    tamper_code(store, **changes)
    result = exchange(http, code)
    assert result.status_code == 400 and "access_token" not in result.text


def test_a_removed_users_tokens_are_inactive(make_app: Any, sec_settings: Any) -> None:
    http = make_app()
    access, refresh_token = tokens_of(login(http))
    assert introspect(http, access).json["active"] is True
    gone = make_app(users=(), settings=dataclasses.replace(sec_settings, users=sec_settings.users[1:]))
    assert introspect(gone, access).json == {"active": False}
    assert introspect(gone, refresh_token).json == {"active": False}


def test_client_credentials_tokens_stay_active(http: testing.TestClient) -> None:
    result = call(http, "/api/v1/tokens", {"grant_type": "client_credentials"})
    assert introspect(http, result.json["access_token"]).json["active"] is True


@pytest.mark.parametrize("member", ["username", "sub"])
def test_a_client_id_equal_to_a_user_is_refused(tmp_path: Path, member: str) -> None:
    pw = hash_secret("pw", log_n=10)
    name = USER if member == "username" else "7d0e1f2a"
    path = tmp_path / "jwtauth.toml"
    path.write_text(
        'issuer = "https://auth.example.com"\n'
        f'[[clients]]\nid = "{name}"\nsecret_hash = "{pw}"\n'
        f'[[users]]\nusername = "{USER}"\nsub = "7d0e1f2a"\npassword_hash = "{pw}"\n'
    )
    with pytest.raises(ConfigError, match="clients"):
        load_settings(path, env={})


def test_a_deeply_nested_header_is_inactive_not_a_500(http: testing.TestClient) -> None:
    header = '{"alg":"ES256","typ":"at+jwt","kid":' + "[" * 3000 + "]" * 3000 + "}"
    segment = base64.urlsafe_b64encode(header.encode()).rstrip(b"=").decode()
    result = introspect(http, f"{segment}.e30.c2ln")
    assert result.status_code == 200 and result.json == {"active": False}
