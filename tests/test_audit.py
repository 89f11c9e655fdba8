"""Audit events (jwtauth/resources/audit.py): one JSON line per security-relevant outcome, no secret."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from falcon import testing

from jwtauth.accounts.hashing import SecretChecker
from jwtauth.app import create_app
from jwtauth.cli import keyfolder
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from jwtauth.resources.audit import Audit, token_ids
from tests import authflow
from tests.helpers import (
    CHEAP,
    INTROSPECT,
    PASSWORD,
    README_QUERY,
    TOKENS,
    USER,
    basic,
    call,
    claims_of,
    login,
    refresh,
    revoke,
    tokens_of,
)

CODE_QUERY = {**README_QUERY, "redirect_uri": "https://www.example.com"}


@dataclasses.dataclass
class Audited:
    http: testing.TestClient
    lines: list[str]

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        parsed = [json.loads(line) for line in self.lines]
        return [line for line in parsed if name is None or line["audit"] == name]


def audited(settings: Settings, keyring: KeyRing, **changes: Any) -> Audited:
    lines: list[str] = []
    app = create_app(
        dataclasses.replace(settings, **changes),
        keyring,
        fakeredis.FakeRedis(server=fakeredis.FakeServer()),
        checker=SecretChecker(dummy_log_n=CHEAP),
        audit_log=lines.append,
    )
    return Audited(testing.TestClient(app), lines)


@pytest.fixture
def audit(settings: Settings, keyring: KeyRing) -> Audited:
    return audited(settings, keyring, refresh_grace_seconds=0)


def test_a_token_issued_names_client_subject_jti_and_family(audit: Audited) -> None:
    access, _ = tokens_of(login(audit.http))
    (line,) = audit.events("token_issued")
    claims = claims_of(access)
    assert line["outcome"] == "success" and line["grant"] == "password"
    assert (line["client_id"], line["sub"], line["jti"], line["fid"]) == (
        "testclient",
        claims["sub"],
        claims["jti"],
        claims["fid"],
    )
    assert line["client"] == "127.0.0.1" and len(line["request_id"]) == 16
    assert abs(line["ts"] - time.time()) < 60


def test_client_credentials_and_implicit_tokens_are_audited(audit: Audited) -> None:
    ok = audit.http.simulate_post(TOKENS, body="grant_type=client_credentials", headers=basic())
    assert ok.status_code == 200
    result = authflow.authorize(audit.http, {**CODE_QUERY, "response_type": "token"})
    assert result.status_code == 303
    grants = [(line["grant"], line["client_id"]) for line in audit.events("token_issued")]
    assert grants == [("client_credentials", "testclient"), ("implicit", "testclient")]
    assert audit.events("token_issued")[1]["sub"] == USER


def test_refusals_carry_the_oauth_error(audit: Audited) -> None:
    assert login(audit.http, password="wrong").status_code == 400
    call(audit.http, INTROSPECT, {"token": "x"}, auth=("testclient", "wrong"))
    call(audit.http, TOKENS, {"grant_type": "client_credentials"}, auth=("nobody", "x"))
    refused = audit.events("request_refused")
    assert [(r["endpoint"], r["error"], r.get("client_id")) for r in refused] == [
        ("token", "invalid_grant", "testclient"),  # authenticated client, wrong user password
        ("introspect", "invalid_client", None),  # no client is named before it authenticates
        ("token", "invalid_client", None),
    ]
    assert all(r["outcome"] == "failure" for r in refused)


def test_a_locked_sign_in_is_audited(settings: Settings, keyring: KeyRing) -> None:
    audit = audited(settings, keyring, max_failures=1)
    login(audit.http, password="wrong")
    assert login(audit.http).status_code == 429
    (locked,) = audit.events("signin_locked")
    assert (locked["endpoint"], locked["grant"], locked["outcome"]) == ("token", "password", "failure")


def test_reuse_and_revocation_are_audited(audit: Audited) -> None:
    _, first = tokens_of(login(audit.http))
    assert refresh(audit.http, first).status_code == 200
    assert refresh(audit.http, first).status_code == 400  # reuse: the family is revoked
    (reuse,) = audit.events("reuse_detected")
    assert (reuse["kind"], reuse["client_id"], reuse["grant"]) == (
        "refresh_token",
        "testclient",
        "refresh_token",
    )
    _, other = tokens_of(login(audit.http))
    assert revoke(audit.http, other).status_code == 200
    (revoked,) = audit.events("family_revoked")
    assert revoked["client_id"] == "testclient" and revoked["outcome"] == "success"
    code = authflow.code_from(authflow.authorize(audit.http, CODE_QUERY))
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://www.example.com"}
    assert call(audit.http, TOKENS, exchange).status_code == 200
    assert call(audit.http, TOKENS, exchange).status_code == 400
    assert [r["kind"] for r in audit.events("reuse_detected")] == ["refresh_token", "authorization_code"]


def test_a_signer_change_is_audited(settings: Settings, tmp_path: Path) -> None:
    now = [time.time()]
    directory = tmp_path / "keys"
    keyfolder.ensure(directory, "ES256", retire_after=960, now=now[0])
    ring = KeyRing(directory, retire_after=960, check_interval=0, clock=lambda: now[0])
    audit = audited(settings, ring)
    keyfolder.rotate(directory, "EdDSA", publish_ahead=10, retire_after=960, now=now[0])
    now[0] += 60
    assert audit.http.simulate_get("/jwks").status_code == 200
    ring.signer()
    (rotated,) = audit.events("key_rotated")
    assert rotated["outcome"] == "success"


def test_no_secret_reaches_an_audit_line(audit: Audited) -> None:
    access, refresh_token = tokens_of(login(audit.http))
    refresh(audit.http, refresh_token)
    refresh(audit.http, refresh_token)
    login(audit.http, password="Wr0ngSecretValue")
    call(audit.http, TOKENS, {"grant_type": "client_credentials"}, auth=("testclient", "AnotherWrongOne"))
    code = authflow.code_from(authflow.authorize(audit.http, CODE_QUERY))
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://www.example.com"}
    call(audit.http, TOKENS, exchange)
    text = "\n".join(audit.lines)
    assert audit.lines and len(audit.events("token_issued")) == 3
    for secret in (PASSWORD, "testpassword", "Wr0ngSecretValue", "AnotherWrongOne", access, code):
        assert secret not in text
    assert refresh_token not in text and refresh_token.split(".")[1] not in text


@pytest.mark.parametrize("garbage", [None, "", "a.b", "a.!!!.c", "a.bnVsbA.c", "x.WzFd.y"])
def test_token_ids_of_garbage_is_empty(garbage: str | None) -> None:
    assert token_ids(garbage) == {}


def test_a_line_is_exactly_the_compact_json_of_its_fields() -> None:
    lines: list[str] = []
    Audit(lines.append, clock=lambda: 1_900_000_000.12345).write(
        "token_issued", "success", client_id='a"b\\c', sub="zoë\n", jti=None, n=3, ok=True, aud=["x", "y"]
    )
    expected = {"ts": 1_900_000_000.123, "audit": "token_issued", "outcome": "success",
                "client_id": 'a"b\\c', "sub": "zoë\n", "n": 3, "ok": True, "aud": ["x", "y"]}  # fmt: skip
    assert lines == [json.dumps(expected, separators=(",", ":"))]


def test_a_requests_audit_lines_share_one_write_with_its_access_line(
    settings: Settings, keyring: KeyRing
) -> None:
    # As `jwtauth serve` wires them: one sink for both, so one write(2) per request.
    writes: list[str] = []
    app = create_app(
        dataclasses.replace(settings, refresh_grace_seconds=0), keyring,
        fakeredis.FakeRedis(server=fakeredis.FakeServer()), checker=SecretChecker(dummy_log_n=CHEAP),
        access_log=writes.append, audit_log=writes.append,
    )  # fmt: skip
    http = testing.TestClient(app)
    assert login(http).status_code == 200
    assert login(http, password="wrong").status_code == 400
    issued, refused = ([json.loads(line) for line in write.split("\n")] for write in writes)
    assert [issued[0]["audit"], refused[0]["audit"]] == ["token_issued", "request_refused"]
    assert issued[1]["status"] == 200 and refused[1]["status"] == 400  # then the access line
    assert issued[0]["request_id"] == issued[1]["request_id"]
