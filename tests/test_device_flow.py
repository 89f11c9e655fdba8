"""The device flow over HTTP (RFC 8628): request, /device page, polling, metadata, metrics, outages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis
from falcon import testing
from redis.backoff import NoBackoff
from redis.retry import Retry

from jwtauth.accounts.hashing import SecretChecker
from jwtauth.app import create_app, create_management_app
from jwtauth.cli import main as cli
from jwtauth.config.settings import Settings, load_settings
from jwtauth.keys import KeyRing
from jwtauth.oauth.device import GRANT_TYPE
from jwtauth.observability import Metrics
from tests.deviceflow import (
    CONSOLE,
    DEVICE_AUTHORIZATION,
    TV,
    approve,
    browser_decide,
    browser_enter,
    device_clients,
    enter,
    open_device,
    poll,
    start,
    started,
)
from tests.helpers import FIXTURES, ISSUER, PASSWORD, USER, Clock, MakeApp, with_clients
from tests.oidc.browser import SESSION, Browser, answer
from tests.oidc.flow import OPENID_QUERY
from tests.support import free_port


@pytest.fixture
def http(make_app: MakeApp, settings: Settings) -> testing.TestClient:
    return make_app(clients=device_clients(settings))


def error_of(result: testing.Result) -> str:
    assert result.headers.get("Cache-Control") == "no-store", result.headers
    error: str = result.json["error"]
    return error


def test_the_device_request_answers_rfc_8628_section_3_2(http: testing.TestClient) -> None:
    result = start(http, scope="read")
    assert result.status_code == 200 and result.headers["Cache-Control"] == "no-store"
    body = result.json
    assert set(body) == {
        "device_code", "user_code", "verification_uri", "verification_uri_complete", "expires_in", "interval",
    }  # fmt: skip
    assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}", body["user_code"])
    assert len(body["device_code"]) >= 43  # 256 bits, at least the 128 RFC 8628 §5.2 asks
    assert body["verification_uri"] == f"{ISSUER}/device"
    assert body["verification_uri_complete"] == f"{ISSUER}/device?user_code={body['user_code']}"
    assert (body["expires_in"], body["interval"]) == (600, 5)


@pytest.mark.parametrize(
    ("client_id", "params", "status", "error"),
    [
        ("plain", {}, 400, "unauthorized_client"),  # no device grant
        ("nobody", {}, 401, "invalid_client"),
        (TV, {"scope": "admin"}, 400, "invalid_scope"),
        (TV, {"resource": "https://evil.example.com"}, 400, "invalid_target"),
    ],
)
def test_bad_device_requests_get_token_endpoint_errors(
    http: testing.TestClient, client_id: str, params: dict[str, str], status: int, error: str
) -> None:
    result = start(http, client_id, **params)
    assert result.status_code == status and error_of(result) == error


def test_a_confidential_client_authenticates_as_at_the_token_endpoint(http: testing.TestClient) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    wrong = http.simulate_post(DEVICE_AUTHORIZATION, body=f"client_id={CONSOLE}", headers=headers)
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Basic")
    assert http.simulate_get(DEVICE_AUTHORIZATION).status_code == 405
    assert start(http, CONSOLE).status_code == 200


def test_pending_then_approved_gives_tokens_once(http: testing.TestClient, clock: Clock) -> None:
    body = started(http, CONSOLE, scope="read", resource="https://reports.example.com")
    assert error_of(poll(http, body["device_code"], CONSOLE)) == "authorization_pending"
    done = approve(http, body["user_code"])
    assert done.status_code == 200 and "Your device is connected" in done.text
    clock.now += 5
    tokens = poll(http, body["device_code"], CONSOLE)
    assert tokens.status_code == 200 and tokens.json["scope"] == "read" and tokens.json["refresh_token"]
    claims = jwt.decode(tokens.json["access_token"], options={"verify_signature": False})
    assert (claims["sub"], claims["client_id"], claims["aud"]) == (
        USER,
        CONSOLE,
        "https://reports.example.com",
    )
    refreshed = http.simulate_post(
        "/api/v1/tokens",
        body=f"grant_type=refresh_token&refresh_token={tokens.json['refresh_token']}",
        headers=poll_headers(),
    )
    assert refreshed.status_code == 200
    # A poll after success: invalid_grant, and the family it started is revoked (RFC 6749 §4.1.2).
    clock.now += 5
    assert error_of(poll(http, body["device_code"], CONSOLE)) == "invalid_grant"
    again = http.simulate_post(
        "/api/v1/tokens",
        body=f"grant_type=refresh_token&refresh_token={refreshed.json['refresh_token']}",
        headers=poll_headers(),
    )
    assert error_of(again) == "invalid_grant"


def poll_headers() -> dict[str, str]:
    from tests.deviceflow import auth_for

    return auth_for(CONSOLE)[0]


def test_a_public_client_gets_no_refresh_token(http: testing.TestClient) -> None:
    body = started(http)
    approve(http, body["user_code"])
    tokens = poll(http, body["device_code"])
    assert tokens.status_code == 200 and "refresh_token" not in tokens.json
    assert tokens.json["scope"] == "read write"


def test_slow_down_is_enforced_from_the_last_poll(http: testing.TestClient, clock: Clock) -> None:
    code = started(http)["device_code"]
    assert error_of(poll(http, code)) == "authorization_pending"
    clock.now += 2
    fast = poll(http, code)
    assert fast.status_code == 400 and error_of(fast) == "slow_down"
    clock.now += 9  # 9 s after the last poll, but the interval is now 10 s
    assert error_of(poll(http, code)) == "slow_down"
    clock.now += 15
    assert error_of(poll(http, code)) == "authorization_pending"


def test_deny_ends_the_request(http: testing.TestClient) -> None:
    body = started(http)
    done = approve(http, body["user_code"], decision="deny")
    assert done.status_code == 200 and "denied" in done.text
    denied = poll(http, body["device_code"])
    assert denied.status_code == 400 and error_of(denied) == "access_denied"
    # The code is used up: entering it again shows the generic wrong-code page.
    assert "not valid" in enter(http, body["user_code"]).result.text


def test_an_expired_request_says_expired_token(http: testing.TestClient, clock: Clock) -> None:
    body = started(http)
    clock.now += 600
    assert error_of(poll(http, body["device_code"])) == "expired_token"
    assert "not valid" in enter(http, body["user_code"]).result.text


def test_the_code_is_entered_in_any_case_with_or_without_the_dash(http: testing.TestClient) -> None:
    code = started(http)["user_code"]
    for typed in (code.lower(), code.replace("-", ""), f" {code[:4]} {code[5:]} "):
        page = enter(http, typed)
        assert page.result.status_code == 200 and "TV" not in page.fields
        assert page.fields["user_code"] == code.replace("-", "") and code in page.result.text


def test_the_complete_uri_prefills_and_never_approves(http: testing.TestClient) -> None:
    body = started(http)
    page = open_device(http, f"user_code={body['user_code']}")
    assert page.result.status_code == 200 and f'value="{body["user_code"]}"' in page.result.text
    assert 'name="password"' not in page.result.text  # the user still confirms the code first
    assert error_of(poll(http, body["device_code"])) == "authorization_pending"


def test_the_consent_page_names_client_scopes_audience_and_warns(http: testing.TestClient) -> None:
    body = started(http, CONSOLE, scope="read")
    page = enter(http, body["user_code"])
    text = page.result.text
    assert "console" in text and "Read your data" in text and "api.example.com" in text
    assert "Create and change" not in text and "Never enter a code that someone sent you" in text
    headers = page.result.headers
    assert (
        headers["X-Frame-Options"] == "DENY"
        and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    )
    assert (
        "form-action 'self'" in headers["Content-Security-Policy"] and headers["Cache-Control"] == "no-store"
    )


def test_wrong_password_and_lockout_use_the_sign_in_limits(http: testing.TestClient) -> None:
    body = started(http)
    wrong = approve(http, body["user_code"], password="nope")
    assert wrong.status_code == 400 and "not correct" in wrong.text
    for _ in range(4):
        approve(http, body["user_code"], password="nope")
    locked = approve(http, body["user_code"])  # the right password, locked out
    assert locked.status_code == 429 and "Retry-After" in locked.headers
    assert error_of(poll(http, body["device_code"])) == "authorization_pending"


def test_metadata_lists_the_endpoint_and_the_grant(http: testing.TestClient) -> None:
    meta = http.simulate_get("/.well-known/oauth-authorization-server").json
    assert meta["device_authorization_endpoint"] == f"{ISSUER}{DEVICE_AUTHORIZATION}"
    assert GRANT_TYPE in meta["grant_types_supported"]


def test_metrics_count_requests_approvals_denials_expiries_and_slow_downs(
    settings: Settings, keyring: KeyRing, store: Any, clock: Clock
) -> None:
    metrics = Metrics()  # /metrics is served by the management app (jwtauth serve --metrics-port)
    chosen = with_clients(settings, *device_clients(settings))
    checker = SecretChecker(dummy_log_n=10)
    app = create_app(chosen, keyring, store, clock=clock, metrics=metrics, checker=checker)
    http = testing.TestClient(app)
    first, second, third = started(http), started(http), started(http)
    approve(http, first["user_code"])
    approve(http, second["user_code"], decision="deny")
    poll(http, third["device_code"])
    poll(http, third["device_code"])
    clock.now += 600
    poll(http, third["device_code"])
    text = testing.TestClient(create_management_app(keyring, store, metrics)).simulate_get("/metrics").text
    for outcome, count in (
        ("requested", 3),
        ("approved", 1),
        ("denied", 1),
        ("slow_down", 1),
        ("expired", 1),
    ):
        assert f'jwtauth_device_flow_total{{outcome="{outcome}"}} {count}.0' in text, outcome


def test_redis_down_gives_503_everywhere_in_the_flow(settings: Settings, keyring: KeyRing) -> None:
    down = redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    http = testing.TestClient(create_app(with_clients(settings, *device_clients(settings)), keyring, down))
    for result in (start(http), poll(http, "x" * 43)):
        assert result.status_code == 503 and error_of(result) == "temporarily_unavailable"
        assert result.headers["Retry-After"]
    page = open_device(http)
    assert page.result.status_code == 200  # the form itself needs no store
    entered = enter(http, "BBBB-BBBB")
    assert entered.result.status_code == 503 and entered.result.headers["Retry-After"]


def test_the_settings_file_and_the_cli_accept_the_short_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "settings.toml"
    path.write_bytes(FIXTURES.read_bytes())
    status = cli.main(["clients", "add", "tv", "--public", "--grant", "device_code", "--config", str(path)])
    assert status in (0, None)
    assert 'grant_types = ["device_code"]' in path.read_text()
    client = load_settings(path, env={}).clients[-1]
    assert client.grant_types == {GRANT_TYPE} and client.public
    capsys.readouterr()


def test_openid_scope_adds_an_id_token(http: testing.TestClient, settings: Settings) -> None:
    body = started(http, CONSOLE, scope="openid read")
    approve(http, body["user_code"])
    tokens = poll(http, body["device_code"], CONSOLE)
    assert tokens.status_code == 200, tokens.text
    header = jwt.get_unverified_header(tokens.json["id_token"])
    claims = jwt.decode(tokens.json["id_token"], options={"verify_signature": False})
    user = next(u for u in settings.users if u.username == USER)
    assert header["typ"] == "JWT" and (claims["aud"], claims["sub"]) == (CONSOLE, user.subject)
    without = started(http, CONSOLE, scope="read")
    approve(http, without["user_code"])
    assert "id_token" not in poll(http, without["device_code"], CONSOLE).json


def test_a_browser_session_approves_with_allow_and_deny_only(
    http: testing.TestClient, clock: Clock, settings: Settings
) -> None:
    browser = Browser(http)
    answer(browser.sign_in(OPENID_QUERY))  # signed in at /authorize earlier
    signed_at = int(clock.now)
    clock.now += 60
    body = started(http, CONSOLE, scope="openid read")
    page = browser_enter(browser, body["user_code"])
    assert page.status_code == 200 and f"Signed in as <strong>{USER}</strong>" in page.text
    assert 'name="password"' not in page.text and 'name="username"' not in page.text
    assert browser.fields["sid"] and "Never enter a code that someone sent you" in page.text
    done = browser_decide(browser)
    assert done.status_code == 200 and "Your device is connected" in done.text
    clock.now += 5
    tokens = poll(http, body["device_code"], CONSOLE)
    assert tokens.status_code == 200, tokens.text
    id_token = jwt.decode(tokens.json["id_token"], options={"verify_signature": False})
    access = jwt.decode(tokens.json["access_token"], options={"verify_signature": False})
    user = next(u for u in settings.users if u.username == USER)
    # The session's user and auth_time (its sign-in a minute ago), not the moment of approval.
    assert (id_token["sub"], id_token["auth_time"], access["sub"]) == (user.subject, signed_at, USER)


def test_deny_on_the_session_page_ends_the_request(http: testing.TestClient) -> None:
    browser = Browser(http)
    answer(browser.sign_in(OPENID_QUERY))
    body = started(http)
    browser_enter(browser, body["user_code"])
    assert browser_decide(browser, "deny").status_code == 200
    assert error_of(poll(http, body["device_code"])) == "access_denied"


def test_a_password_sign_in_on_device_starts_a_browser_session(http: testing.TestClient) -> None:
    browser = Browser(http)
    body = started(http)
    assert 'name="password"' in browser_enter(browser, body["user_code"]).text
    done = browser_decide(browser, username=USER, password=PASSWORD)
    assert done.status_code == 200 and "Your device is connected" in done.text
    cookie = done.cookies[SESSION]
    assert cookie.http_only and cookie.same_site == "Lax" and cookie.path == "/"
    # The same session stands in for the password at /authorize (single sign-on): consent only.
    consent = browser.get(OPENID_QUERY)
    assert "Signed in as" in consent.text and 'name="password"' not in consent.text
    again = started(http)
    assert "Signed in as" in browser_enter(browser, again["user_code"]).text
