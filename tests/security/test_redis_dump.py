"""Issue 18, item 10: a dump of Redis names no user.

Every flow that writes a user into Redis runs against a real Redis under its own prefix, and a
dump of every key and value there, taken at each step (a code issued but not redeemed, a device
request approved but not polled, a pushed request naming the user in `login_hint`, families,
counters, ended sessions), holds neither the username nor the user's `sub`, in clear, in
SHA-256 or as an unkeyed HMAC (what the counters used). A sealed value copied into another
record does not open there, and a server without its pepper refuses to start with the command.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from falcon import testing

from jwtauth.cli import keyfolder
from jwtauth.cli import main as cli
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from jwtauth.store.pepper import PEPPER_FILE, PepperError
from tests.authflow import authorize, code_from
from tests.deviceflow import approve, device_clients, poll, started
from tests.helpers import (
    README_QUERY,
    USER,
    MakeApp,
    call,
    login,
    refresh,
    snapshot,
    token,
    tokens_of,
)
from tests.oidc.browser import Browser, answer
from tests.oidc.flow import OPENID_QUERY

SUB = "5f0c1d2e-8a4b-4c6d-9e7f-0a1b2c3d4e5f"  # the demo user's sub (fixtures)


def forms_of(name: str) -> list[bytes]:
    """Return the ways a name could sit in Redis without the pepper: clear, digests, unkeyed HMACs."""
    raw = name.encode()
    found = [raw, hashlib.sha256(raw).hexdigest().encode()]
    for prefix in (b"", b"user|", b"user:", b"known|"):
        found.append(hmac.new(b"", prefix + raw, hashlib.sha256).hexdigest().encode())
    return found


def leaks(dump: dict[bytes, Any]) -> list[str]:
    """Return each key whose name or content holds a form of the user's name or sub."""
    text = {key: repr(key) + repr(value) for key, value in dump.items()}
    forms = [f.decode() for name in (USER, SUB, USER.upper()) for f in forms_of(name)]
    return [f"{key!r} holds {form!r}" for key, seen in text.items() for form in forms if form in seen]


@pytest.fixture
def flows(
    make_app: MakeApp, settings: Settings, real_redis: tuple[Any, str]
) -> tuple[testing.TestClient, Any, str]:
    conn, prefix = real_redis
    return make_app(store=conn, redis_prefix=prefix, clients=device_clients(settings)), conn, prefix


def dump(conn: Any, prefix: str) -> dict[bytes, Any]:
    every = snapshot(conn)
    return {key: value for key, value in every.items() if key.startswith(prefix.encode())}


def test_no_flow_leaves_a_username_or_sub_in_redis(flows: tuple[testing.TestClient, Any, str]) -> None:
    http, conn, prefix = flows
    dumps: list[dict[bytes, Any]] = []
    # Password grant, then a refresh; a failed sign-in leaves counters.
    access, refresh_token = tokens_of(login(http))
    assert refresh(http, refresh_token).status_code == 200
    assert login(http, password="wrong").status_code == 400
    dumps.append(dump(conn, prefix))
    # Code flow: the record while the code waits, then the exchange.
    code = code_from(authorize(http, README_QUERY))
    dumps.append(dump(conn, prefix))
    assert token(http, {"grant_type": "authorization_code", "code": code}).status_code == 200
    # OpenID Connect sign-in (a session), its code exchanged, then a logout (session marks).
    browser = Browser(http)
    oidc_code = answer(browser.sign_in(OPENID_QUERY))["code"]
    dumps.append(dump(conn, prefix))
    id_token = token(http, {"grant_type": "authorization_code", "code": oidc_code}).json["id_token"]
    jar = {"Cookie": "; ".join(f"{k}={v}" for k, v in browser.cookies.items())}
    http.simulate_get("/logout", query_string=urlencode({"id_token_hint": id_token}), headers=jar)
    # Device flow: approved but not yet polled, then redeemed.
    device = started(http)
    assert approve(http, device["user_code"]).status_code == 200
    dumps.append(dump(conn, prefix))
    assert poll(http, device["device_code"]).status_code == 200
    # A pushed request naming the user.
    pushed = call(http, "/api/v1/par", {**README_QUERY, "login_hint": USER})
    assert pushed.status_code == 201, pushed.text
    dumps.append(dump(conn, prefix))
    assert access and all(dumps)
    assert [leak for d in dumps for leak in leaks(d)] == []


def test_the_check_catches_a_clear_name(flows: tuple[testing.TestClient, Any, str]) -> None:
    # The dump test can fail: a name written the old way is found.
    _, conn, prefix = flows
    conn.hset(f"{prefix}{{f:x}}", "subject", USER)
    conn.set(f"{prefix}{{l:{forms_of(USER)[2].decode()}}}", b"1")
    assert len(leaks(dump(conn, prefix))) == 2


def sealed_field(conn: Any, prefix: str, kind: str, field: str) -> list[tuple[bytes, bytes]]:
    keys = [k for k in conn.scan_iter(match=f"{prefix}{{{kind}:*", count=1000) if conn.type(k) == b"hash"]
    return [(k, conn.hget(k, field)) for k in keys if conn.hget(k, field) is not None]


def test_a_sealed_subject_moved_to_another_family_does_not_open(
    flows: tuple[testing.TestClient, Any, str],
) -> None:
    http, conn, prefix = flows
    _, mine = tokens_of(login(http))
    _, theirs = tokens_of(login(http))
    families = dict(sealed_field(conn, prefix, "f", "subject"))
    mine_key = next(k for k in families if mine.split(".")[0].encode() in k)
    theirs_key = next(k for k in families if theirs.split(".")[0].encode() in k)
    assert families[mine_key].startswith(b"enc1:")
    conn.hset(mine_key, "subject", families[theirs_key])  # same user here; the binding still holds
    assert refresh(http, mine).status_code == 400
    assert refresh(http, theirs).status_code == 200


def test_a_sealed_code_record_moved_to_another_code_does_not_open(
    flows: tuple[testing.TestClient, Any, str],
) -> None:
    http, conn, prefix = flows
    first = code_from(authorize(http, README_QUERY))
    second = code_from(authorize(http, {**README_QUERY, "scope": "read"}))
    by_digest = {hashlib.sha256(c.encode()).hexdigest(): c for c in (first, second)}
    records = {
        k.decode().rpartition("{c:")[2].rstrip("}"): v for k, v in sealed_field(conn, prefix, "c", "data")
    }
    digest = hashlib.sha256(first.encode()).hexdigest()
    other = next(d for d in records if d != digest)
    conn.hset(f"{prefix}{{c:{digest}}}", "data", records[other])
    assert token(http, {"grant_type": "authorization_code", "code": by_digest[digest]}).status_code == 400
    assert token(http, {"grant_type": "authorization_code", "code": by_digest[other]}).status_code == 200


def test_serving_a_shared_redis_without_the_pepper_names_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys"
    keyfolder.ensure(keys, "ES256", retire_after=960)
    (keys / PEPPER_FILE).unlink()
    monkeypatch.setenv("JWTAUTH_KEYS_DIR", str(keys))
    monkeypatch.setenv("JWTAUTH_REDIS_URL", "redis://127.0.0.1:1/0")
    assert cli.main(["serve", "--port", "1"]) == 2  # refused before anything listens
    error = capsys.readouterr().err
    assert "no pepper" in error and "jwtauth keys ensure" in error and "Traceback" not in error


def test_an_app_without_a_pepper_is_refused_and_a_bad_one_too(tmp_path: Path, settings: Settings) -> None:
    from jwtauth.app import create_app

    keys = tmp_path / "keys"
    keyfolder.ensure(keys, "ES256", retire_after=960)
    (keys / PEPPER_FILE).unlink()
    with pytest.raises(PepperError, match="jwtauth keys ensure"):
        create_app(settings, KeyRing(keys, retire_after=960), object())
    (keys / PEPPER_FILE).write_text("c2hvcnQ")  # 5 bytes
    with pytest.raises(PepperError, match="32 bytes"):
        KeyRing(keys, retire_after=960)
