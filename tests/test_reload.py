"""Clients and users without a restart (jwtauth/accounts/reload.py): watched, validated, swapped whole."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from falcon import testing

from jwtauth.accounts.hashing import SecretChecker
from jwtauth.app import create_app
from jwtauth.cli.files import write_atomically
from jwtauth.config.settings import load_settings
from jwtauth.keys import KeyRing
from jwtauth.oidc.pairwise import pairwise_subject
from tests.helpers import (
    CHEAP,
    FIXTURES,
    TOKENS,
    USER,
    active,
    call,
    cheap_hash,
    claims_of,
    login,
    refresh,
    tokens_of,
)

BASE = FIXTURES.read_text()
SECOND = f'''
[[clients]]
id = "second"
secret_hash = "{cheap_hash("secondsecret")}"
grant_types = ["client_credentials"]
scopes = ["read"]
audiences = ["https://api.example.com"]
'''


def cc(http: testing.TestClient, client: tuple[str, str] = ("testclient", "testpassword")) -> int:
    return call(http, TOKENS, {"grant_type": "client_credentials"}, auth=client).status_code


@pytest.fixture
def served(tmp_path: Path, keyring: KeyRing, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An app watching a copy of the demo settings, checking the file on every request."""
    return _watching(tmp_path, keyring, monkeypatch, BASE)


def _watching(tmp_path: Path, keyring: KeyRing, monkeypatch: pytest.MonkeyPatch, text: str) -> Any:
    monkeypatch.setattr("jwtauth.accounts.reload.CHECK_INTERVAL", 0.0)
    path = tmp_path / "settings.toml"
    path.write_text(text)
    lines: list[str] = []

    def load() -> Any:
        return load_settings(path, env={"JWTAUTH_ISSUER": "http://127.0.0.1:8000"})

    checker = SecretChecker(dummy_log_n=CHEAP)
    app = create_app(load(), keyring, _store(), checker=checker, audit_log=lines.append, reload_settings=load)
    return testing.TestClient(app), path, lines


def _store() -> Any:
    import fakeredis

    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


def test_a_new_client_works_and_a_removed_user_ends_without_a_restart(served: Any) -> None:
    http, path, lines = served
    assert cc(http, ("second", "secondsecret")) == 401
    _, refresh_token = tokens_of(login(http))
    # The user goes, a client comes: one atomic write, as the CLI makes.
    without_users = BASE.split("[[users]]")[0]
    write_atomically(path, (without_users + SECOND).encode())
    assert cc(http, ("second", "secondsecret")) == 200
    assert login(http).status_code == 400  # no such user any more
    assert refresh(http, refresh_token).status_code == 400  # their grant ended with the account
    (line,) = [json.loads(x) for x in lines if '"accounts_reloaded"' in x]
    assert line["clients"]["added"] == ["second"] and line["users"]["removed"] == [USER]
    assert "secondsecret" not in "".join(lines) and "scrypt$" not in "".join(lines)


def test_a_bad_file_keeps_what_is_in_use_and_says_why(served: Any, caplog: pytest.LogCaptureFixture) -> None:
    http, path, _ = served
    path.write_text(BASE + SECOND + '\n[[clients]]\nid = "broken"\ngrant_types = ["magic"]\n')
    with caplog.at_level(logging.ERROR, logger="jwtauth"):
        assert cc(http) == 200 and cc(http) == 200
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "clients[2]" in errors[0] and "stay" in errors[0]  # once per change
    assert cc(http, ("second", "secondsecret")) == 401  # nothing of the bad file was taken
    path.write_text(BASE + SECOND)  # fixed
    assert cc(http, ("second", "secondsecret")) == 200


def test_other_settings_need_a_restart_and_say_so(served: Any, caplog: pytest.LogCaptureFixture) -> None:
    http, path, _ = served
    path.write_text(BASE.replace("access_token = 900", "access_token = 600") + SECOND)
    with caplog.at_level(logging.WARNING, logger="jwtauth"):
        assert cc(http, ("second", "secondsecret")) == 200
    assert any("apply after a restart" in r.getMessage() for r in caplog.records)


def test_hot_reload_under_load_fails_no_request(served: Any) -> None:
    http, path, lines = served
    assert cc(http) == 200  # the secret is proven once (scrypt), then each request is fast
    results: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            results.append(cc(http))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for i in range(12):
            write_atomically(path, (BASE + (SECOND if i % 2 == 0 else "")).encode())
            time.sleep(0.03)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert len(results) > 12 and set(results) == {200}
    assert sum('"accounts_reloaded"' in line for line in lines) >= 2  # swaps happened under load


@pytest.mark.e2e
def test_a_real_server_takes_a_new_client_without_a_restart(
    serve: Callable[..., Any], tmp_path: Path
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(BASE)
    with serve(config=path, workers=1) as server:
        token = server.base + TOKENS
        body = {"grant_type": "client_credentials"}
        assert requests.post(token, data=body, auth=("second", "secondsecret"), timeout=5).status_code == 401
        write_atomically(path, (BASE + SECOND).encode())
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if requests.post(token, data=body, auth=("second", "secondsecret"), timeout=5).status_code == 200:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the new client was not taken within 5 s")
        assert server.proc.poll() is None
    assert "settings file reloaded" in server.output()


def test_a_lifetime_beyond_the_started_horizon_waits_for_a_restart(
    served: Any, caplog: pytest.LogCaptureFixture
) -> None:
    http, path, _ = served
    longer = SECOND.replace('scopes = ["read"]', 'scopes = ["read"]\naccess_token_lifetime = 7200')
    path.write_text(BASE + longer)
    with caplog.at_level(logging.ERROR, logger="jwtauth"):
        assert cc(http, ("second", "secondsecret")) == 401  # not swapped in
    assert any("exceeds the" in r.getMessage() and "restart" in r.getMessage() for r in caplog.records)


# What a reload reaches: everything built from the clients and users, not only the registries.
SALT = "0123456789abcdef0123456789abcdef"
WITH_SALT = f'\n[oidc]\npairwise_salt = "{SALT}"\n'
PUBLIC_SUB = "5f0c1d2e-8a4b-4c6d-9e7f-0a1b2c3d4e5f"  # the demo user's, from the fixtures
NEW_ORIGIN = "https://new.example.com"
PAIRWISE_CLIENT = f'''
[[clients]]
id = "pw"
secret_hash = "{cheap_hash("pwsecret")}"
redirect_uris = ["https://pw.example.com/cb"]
grant_types = ["password", "client_credentials"]
scopes = ["read", "reports"]
subject_type = "pairwise"
allowed_origins = ["{NEW_ORIGIN}"]
'''


def _preflight(http: testing.TestClient, origin: str) -> str | None:
    headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    result = http.simulate_options(TOKENS, headers=headers)
    return result.headers.get("Access-Control-Allow-Origin")


@pytest.fixture
def salted(tmp_path: Path, keyring: KeyRing, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Like `served`, on settings with a pairwise salt, so a pairwise client may come later."""
    return _watching(tmp_path, keyring, monkeypatch, BASE + WITH_SALT)


def _add_pairwise_client(path: Path) -> None:
    write_atomically(path, (BASE + WITH_SALT + PAIRWISE_CLIENT).encode())


def test_cors_allows_a_new_clients_origin_after_a_reload(salted: Any) -> None:
    http, path, _ = salted
    assert _preflight(http, NEW_ORIGIN) is None
    _add_pairwise_client(path)
    assert _preflight(http, NEW_ORIGIN) == NEW_ORIGIN
    issued = call(http, TOKENS, {"grant_type": "client_credentials"}, auth=("pw", "pwsecret"),
                  headers={"Origin": NEW_ORIGIN})  # fmt: skip
    assert issued.headers.get("Access-Control-Allow-Origin") == NEW_ORIGIN
    write_atomically(path, (BASE + WITH_SALT).encode())  # a client that goes takes its origin along
    assert _preflight(http, NEW_ORIGIN) is None


def test_a_new_pairwise_client_gets_pairwise_subs_after_a_reload(salted: Any) -> None:
    http, path, _ = salted
    _add_pairwise_client(path)
    # OpenID Connect Core §8.1: its tokens name the user by the pairwise sub of its sector, and
    # introspection finds the user behind that sub.
    issued = login(http, auth=("pw", "pwsecret"))
    assert issued.status_code == 200, issued.text
    sub = claims_of(issued.json["access_token"])["sub"]
    assert sub == pairwise_subject(SALT, "pw.example.com", PUBLIC_SUB)
    assert active(http, issued.json["access_token"], auth=("pw", "pwsecret"))


def test_discovery_offers_a_new_clients_scope_after_a_reload(salted: Any) -> None:
    http, path, _ = salted
    documents = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")
    assert all("reports" not in http.simulate_get(d).json["scopes_supported"] for d in documents)
    _add_pairwise_client(path)
    assert all("reports" in http.simulate_get(d).json["scopes_supported"] for d in documents)


def test_a_removed_users_access_token_is_inactive_after_a_reload(served: Any) -> None:
    http, path, _ = served
    access_token, _ = tokens_of(login(http))
    assert active(http, access_token)
    write_atomically(path, BASE.split("[[users]]")[0].encode())
    assert not active(http, access_token)  # introspection reads the users in use, not those at start


def test_a_users_new_static_claims_reach_their_next_token_after_a_reload(served: Any) -> None:
    http, path, lines = served
    assert "department" not in claims_of(tokens_of(login(http))[0])
    marker = 'username = "testuser@example.com"\n'
    assert marker in BASE
    write_atomically(path, BASE.replace(marker, marker + 'claims = { department = "sales" }\n').encode())
    assert claims_of(tokens_of(login(http))[0])["department"] == "sales"
    (line,) = [json.loads(x) for x in lines if '"accounts_reloaded"' in x]
    assert line["users"]["changed"] == [USER]  # a claims edit is a change of the user


def test_a_client_lifetime_past_the_horizon_the_server_started_with_waits_for_a_restart(
    served: Any, caplog: pytest.LogCaptureFixture
) -> None:
    http, path, _ = served
    # Keys retire on the horizon read at start: a longer-lived token could outlive its key.
    path.write_text(BASE + SECOND + "access_token_lifetime = 3600\n")
    with caplog.at_level(logging.ERROR, logger="jwtauth"):
        assert cc(http) == 200
    assert any("exceeds the 960 s" in r.getMessage() for r in caplog.records)
    assert cc(http, ("second", "secondsecret")) == 401
    path.write_text(BASE + SECOND + "access_token_lifetime = 600\n")  # within it: taken
    assert cc(http, ("second", "secondsecret")) == 200


def test_a_pairwise_client_without_the_salt_the_server_started_with_waits_for_a_restart(
    served: Any, caplog: pytest.LogCaptureFixture
) -> None:
    http, path, _ = served
    # Valid on its own (it brings its salt), but this server has no salt to compute the subs with.
    path.write_text(BASE + WITH_SALT + PAIRWISE_CLIENT)
    with caplog.at_level(logging.ERROR, logger="jwtauth"):
        assert cc(http) == 200
    assert any("pairwise_salt" in r.getMessage() for r in caplog.records)
    assert login(http, auth=("pw", "pwsecret")).status_code == 401  # nothing of the file was taken
