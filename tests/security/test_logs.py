"""No secret in any log line: client secrets, passwords, access and refresh tokens, codes, PKCE
verifiers, CSRF secrets. Checked on every log record of the in-process app (caplog, DEBUG, every
logger) and on the stderr of a real `jwtauth serve` (RFC 6819 §5.1.4.1.3, RFC 9700 §4.11)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
import requests
from falcon import testing

from jwtauth.accounts.hashing import SecretChecker
from jwtauth.app import create_app
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from tests.authflow import open_page, parse_page, redirect_params, submit
from tests.helpers import (
    FORM,
    INTROSPECT,
    PASSWORD,
    REVOKE,
    TOKENS,
    USER,
    Clock,
    call,
    login,
    pkce_pair,
    token,
    tokens_of,
)
from tests.support import REDIS_URL, need

CLIENT_SECRETS = ["testpassword", "othersecret", "multisecret"]


def _secret_parts(value: str) -> list[str]:
    """A token and the part of it that is secret on its own: a JWS signature, a refresh secret.

    A refresh token's family id (before the dot) is an identifier, carried in access tokens as
    `fid` and logged on purpose when a family is revoked; a JWS header and payload are readable
    by anyone who sees the token, and useless without the signature."""
    return [value, value.rsplit(".", 1)[-1]] if value else []


def _records_text(records: list[logging.LogRecord]) -> str:
    out = []
    for record in records:
        out.append(record.getMessage())
        out.append(repr(record.args))
        if record.exc_info and record.exc_info[1] is not None:
            out.append(logging.Formatter().formatException(record.exc_info))
        if record.exc_text:
            out.append(record.exc_text)
    return "\n".join(out)


def _assert_absent(text: str, secrets: list[str]) -> None:
    leaked = sorted({s for s in secrets if s and s in text})
    assert not leaked, f"secrets in logs: {leaked!r}"


def run_every_flow(http: testing.TestClient, clock: Clock, secrets: list[str]) -> None:
    """Drive successes and failures of every endpoint, collecting what must never be logged."""
    secrets += [*CLIENT_SECRETS, PASSWORD, "correct horse battery staple"]
    access, refresh = tokens_of(login(http))
    secrets += _secret_parts(access) + _secret_parts(refresh)
    login(http, USER, "wrong-password-guess")  # a failure with a password in the request
    secrets.append("wrong-password-guess")
    login(http, "nobody@example.com", "another-guess-1234")
    secrets.append("another-guess-1234")
    token(http, {"grant_type": "client_credentials"}, auth=("testclient", "wrong-client-secret"))
    secrets.append("wrong-client-secret")
    cc = token(http, {"grant_type": "client_credentials"}).json["access_token"]
    secrets += _secret_parts(cc)
    # refresh: rotate, replay within grace, then reuse after grace (logged as a detail)
    next_access, next_refresh = tokens_of(
        token(http, {"grant_type": "refresh_token", "refresh_token": refresh})
    )
    secrets += _secret_parts(next_access) + _secret_parts(next_refresh)
    clock.now += 30
    token(http, {"grant_type": "refresh_token", "refresh_token": refresh})
    # the authorization page and the code flow with PKCE
    verifier, challenge = pkce_pair()
    secrets.append(verifier)
    query = {
        "response_type": "code",
        "client_id": "testclient",
        "redirect_uri": "https://www.example.com",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page = open_page(http, query)
    secrets += [page.fields["csrf_token"], (page.cookie or "=").split("=", 1)[1]]
    submit(http, page, password="wrong-page-password")
    secrets.append("wrong-page-password")
    result = submit(http, page)
    code = redirect_params(result.headers["Location"])["code"]
    secrets.append(code)
    params = {"grant_type": "authorization_code", "code": code, "code_verifier": "W" * 43}
    token(http, params)  # wrong verifier
    secrets.append("W" * 43)
    code_access, code_refresh = tokens_of(token(http, {**params, "code_verifier": verifier}))
    secrets += _secret_parts(code_access) + _secret_parts(code_refresh)
    token(http, {**params, "code_verifier": verifier})  # replay: revokes, logs a detail
    # implicit
    implicit = submit(http, open_page(http, {**query, "response_type": "token"}))
    fragment = redirect_params(implicit.headers["Location"], fragment=True)
    secrets += _secret_parts(fragment.get("access_token", ""))
    # introspection and revocation, own and foreign, good and bad
    for value in (next_access, next_refresh, code_access, "garbage-token-value"):
        call(http, INTROSPECT, {"token": value})
        call(http, INTROSPECT, {"token": value}, auth=("other", "othersecret"))
        call(http, REVOKE, {"token": value}, auth=("other", "othersecret"))
    call(http, REVOKE, {"token": code_refresh})
    # malformed requests that reach the error paths
    http.simulate_post(TOKENS, body="grant_type=password&password=" + "p" * 40000, headers=FORM)
    http.simulate_post(
        TOKENS, body=urlencode({"grant_type": "password", "password": "nul\x00secret"}), headers=FORM
    )
    http.simulate_put(TOKENS, body="client_secret=testpassword")
    call(http, TOKENS, {"grant_type": "client_credentials"}, query="client_secret=query-secret-value")
    secrets.append("query-secret-value")


def test_no_secret_reaches_any_log_record(
    caplog: pytest.LogCaptureFixture, make_app: Any, clock: Clock
) -> None:
    http = make_app()
    secrets: list[str] = []
    with caplog.at_level(logging.DEBUG):
        run_every_flow(http, clock, secrets)
    assert len(secrets) > 20
    assert caplog.records, "the flows log something (failures, reuse, replays): the check must not be vacuous"
    _assert_absent(_records_text(caplog.records), secrets)


def test_no_secret_in_the_logs_of_a_store_outage(
    caplog: pytest.LogCaptureFixture, sec_settings: Settings, keyring: KeyRing
) -> None:
    dead = redis.Redis.from_url("redis://:store-password-123@127.0.0.1:1/0", socket_connect_timeout=0.2)
    http = testing.TestClient(create_app(sec_settings, keyring, dead, checker=SecretChecker(dummy_log_n=10)))
    with caplog.at_level(logging.DEBUG):
        result = login(http)
        refreshed = token(http, {"grant_type": "refresh_token", "refresh_token": "A" * 22 + "." + "B" * 43})
    assert result.status_code == 503 and refreshed.status_code in (400, 503)
    assert caplog.records
    _assert_absent(_records_text(caplog.records), [PASSWORD, "store-password-123", "B" * 43, *CLIENT_SECRETS])


def test_an_unexpected_error_logs_its_traceback_but_no_secret(
    caplog: pytest.LogCaptureFixture, make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jwtauth.accounts.users import UserDirectory

    def broken(self: Any, username: str, password: str) -> Any:
        raise RuntimeError("directory unavailable")

    monkeypatch.setattr(UserDirectory, "authenticate", broken)
    http = make_app()
    with caplog.at_level(logging.DEBUG):
        assert login(http, USER, "secret-in-a-crash").status_code == 500
    text = _records_text(caplog.records)
    assert "RuntimeError" in text  # the bug is logged, with its traceback ...
    _assert_absent(text, ["secret-in-a-crash", *CLIENT_SECRETS])  # ... and no local's value


# --- a real serve -------------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.redis
def test_no_secret_in_a_real_serves_output(serve: Any, real_redis: tuple[Any, str]) -> None:
    conn, prefix = real_redis
    need(conn.ping(), "Redis answers")
    env = {"JWTAUTH_REDIS_URL": REDIS_URL, "JWTAUTH_REDIS_PREFIX": prefix}
    secrets = [*CLIENT_SECRETS, PASSWORD]
    with serve(env=env) as server:
        base = server.base
        auth = ("testclient", "testpassword")

        def post(path: str, data: dict[str, str], **kwargs: Any) -> requests.Response:
            return requests.post(base + path, data=data, timeout=10, **kwargs)

        login = post(
            TOKENS, {"grant_type": "password", "username": USER, "password": PASSWORD}, auth=auth
        ).json()
        secrets += _secret_parts(login["access_token"]) + _secret_parts(login["refresh_token"])
        post(TOKENS, {"grant_type": "password", "username": USER, "password": "serve-wrong-guess"}, auth=auth)
        post(TOKENS, {"grant_type": "client_credentials"}, auth=("testclient", "serve-wrong-secret"))
        secrets += ["serve-wrong-guess", "serve-wrong-secret"]
        rotated = post(
            TOKENS, {"grant_type": "refresh_token", "refresh_token": login["refresh_token"]}, auth=auth
        )
        secrets += _secret_parts(rotated.json()["refresh_token"])
        post(INTROSPECT, {"token": login["access_token"]}, auth=auth)
        post(REVOKE, {"token": rotated.json()["refresh_token"]}, auth=auth)
        # the browser flow: page, sign-in, code, exchange
        session = requests.Session()
        verifier, challenge = pkce_pair()
        query = {
            "response_type": "code",
            "client_id": "testclient",
            "redirect_uri": "https://www.example.com",
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        page = session.get(base + "/authorize", params=query, timeout=10)
        fields = parse_page(page.text).hidden
        secrets += [fields["csrf_token"], *(v for v in session.cookies.values() if v), verifier]
        form = {**fields, "username": USER, "password": PASSWORD, "decision": "allow"}
        answer = session.post(base + "/authorize", data=form, allow_redirects=False, timeout=10)
        code = redirect_params(answer.headers["Location"])["code"]
        secrets.append(code)
        exchanged = post(
            TOKENS, {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}, auth=auth
        ).json()
        secrets += _secret_parts(exchanged["access_token"]) + _secret_parts(exchanged["refresh_token"])
        post(TOKENS, {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}, auth=auth)
        requests.get(base + "/authorize", params={**query, "password": "url-secret-value"}, timeout=10)
        secrets.append("url-secret-value")
    output = server.output()
    assert output.strip(), "the server wrote nothing at all: the check would be vacuous"
    _assert_absent(output, secrets)
