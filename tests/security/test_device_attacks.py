"""Attacks on the device flow (RFC 8628 §5): user-code guessing, CSRF on /device, scope
widening at approval, another client's device_code, remote phishing cues, echoed input; the
browser session standing in for the password: forged, stale, foreign and ended sessions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
import pytest
from falcon import testing

from jwtauth.config.settings import Settings
from jwtauth.resources.device import BOUND
from jwtauth.web import csrf
from tests.deviceflow import (
    CONSOLE,
    GRANT_TYPE,
    TV,
    approve,
    auth_for,
    browser_decide,
    browser_enter,
    device_clients,
    enter,
    open_device,
    poll,
    post_device,
    started,
)
from tests.helpers import (
    USER,
    VICTIM,
    VICTIM_PASSWORD,
    MakeApp,
    ScryptCounter,
    assert_clean_error,
    cheap_user,
)
from tests.oidc.browser import SESSION, Browser, answer
from tests.oidc.flow import OPENID_QUERY

Snapshot = Callable[[], dict[bytes, Any]]


@pytest.fixture
def dev(make_app: MakeApp, sec_settings: Settings) -> testing.TestClient:
    return make_app(clients=device_clients(sec_settings))


def wrong_entries(http: testing.TestClient, count: int, addr: str) -> None:
    for _ in range(count):
        page = enter(http, "BBBB-BBBB", remote_addr=addr)
        assert page.result.status_code == 400 and "not valid" in page.result.text


def test_an_address_guessing_user_codes_is_locked_out_even_for_the_right_code(
    dev: testing.TestClient,
) -> None:
    body = started(dev)
    wrong_entries(dev, 5, "203.0.113.9")
    locked = enter(dev, body["user_code"], remote_addr="203.0.113.9")
    assert locked.result.status_code == 429 and int(locked.result.headers["Retry-After"]) > 0
    assert 'name="password"' not in locked.result.text
    # Another address is not affected, and a right entry gives its count back.
    assert enter(dev, body["user_code"], remote_addr="198.51.100.1").result.status_code == 200


def test_guessing_from_many_addresses_hits_the_global_limit(
    make_app: MakeApp, sec_settings: Settings
) -> None:
    http = make_app(clients=device_clients(sec_settings), max_failures=1)
    body = started(http)
    for i in range(100):  # 1 per address, 100 in all: the global limit (GLOBAL_FACTOR x 1)
        wrong_entries(http, 1, f"10.0.{i // 250}.{i % 250}")
    assert enter(http, body["user_code"], remote_addr="192.0.2.200").result.status_code == 429


def test_decision_posts_guess_no_faster_than_typed_codes(
    dev: testing.TestClient, scrypt_calls: ScryptCounter, clock: Any
) -> None:
    # An attacker's own browser cookie is the CSRF key, so it can mint tokens for any code: the
    # code in a decision is counted like a typed one.
    page = open_device(dev)
    assert page.cookie is not None
    secret = page.cookie.partition("=")[2]
    for guess in ("BBBBBBBB", "CCCCCCCC", "DDDDDDDD", "FFFFFFFF", "GGGGGGGG"):
        bound = {"user_code": guess, "client_id": TV}
        token = csrf.issue(secret, bound, BOUND, now=clock())
        fields = {**bound, "decision": "deny", "csrf_token": token}
        refused = post_device(dev, page, fields, remote_addr="203.0.113.7")
        assert refused.result.status_code == 400 and "not valid" in refused.result.text
    body = started(dev)
    assert enter(dev, body["user_code"], remote_addr="203.0.113.7").result.status_code == 429
    assert scrypt_calls.calls == 0


def test_wrong_malformed_expired_and_used_codes_look_alike(dev: testing.TestClient, clock: Any) -> None:
    used = started(dev)
    approve(dev, used["user_code"])
    pages = [
        enter(dev, typed, remote_addr=f"192.0.2.{i}") for i, typed in enumerate(("BBBB-BBBB", "not a code!"))
    ]
    pages.append(enter(dev, used["user_code"], remote_addr="192.0.2.3"))
    expired = started(dev)
    clock.now += 601
    pages.append(enter(dev, expired["user_code"], remote_addr="192.0.2.4"))
    texts = {p.result.text.split("<form", 1)[0] for p in pages}
    assert len(texts) == 1 and {p.result.status_code for p in pages} == {400}


@pytest.mark.parametrize(
    "attack",
    [
        {"csrf_token": None},  # missing
        {"csrf_token": "9999999999." + "A" * 43},  # forged
        {"cookie": "jwtauth-csrf=" + "B" * 43},  # another browser's cookie
        {"cookie": None},  # no cookie at all (cross-site POST, SameSite)
        {"user_code": "CCCCCCCC"},  # the token of another code
        {"client_id": CONSOLE},  # the token of another client
    ],
)
def test_csrf_on_device_is_refused_before_any_password_check(
    dev: testing.TestClient, state: Snapshot, scrypt_calls: ScryptCounter, attack: dict[str, str | None]
) -> None:
    body = started(dev)
    consent = enter(dev, body["user_code"])
    before = {k: v for k, v in state().items() if b"{d:" in k or b"{u:" in k}
    fields: dict[str, str | None] = {"username": USER, "password": "testpassword", "decision": "allow"}
    cookie = attack.pop("cookie", "") if "cookie" in attack else ""
    fields.update(attack)
    result = post_device(dev, consent, fields, cookie=cookie).result
    assert result.status_code == 400 and "Your device is connected" not in result.text
    assert scrypt_calls.calls == 0
    assert {k: v for k, v in state().items() if b"{d:" in k or b"{u:" in k} == before
    assert assert_clean_error(poll(dev, body["device_code"]), 400)["error"] == "authorization_pending"


def test_the_code_form_itself_is_csrf_protected(dev: testing.TestClient) -> None:
    body = started(dev)
    page = post_device(dev, open_device(dev), {"user_code": body["user_code"], "csrf_token": None})
    assert page.result.status_code == 400 and 'name="password"' not in page.result.text


def test_approval_cannot_widen_scope_or_audience(dev: testing.TestClient) -> None:
    body = started(dev, CONSOLE, scope="read")
    extra = {"scope": "read write", "resource": "https://reports.example.com", "audience": "x"}
    done = approve(dev, body["user_code"], **extra)
    assert done.status_code == 200
    tokens = poll(dev, body["device_code"], CONSOLE)
    claims = jwt.decode(tokens.json["access_token"], options={"verify_signature": False})
    assert (tokens.json["scope"], claims["aud"]) == ("read", "https://api.example.com")


def test_the_poll_cannot_change_scope_either(dev: testing.TestClient) -> None:
    body = started(dev, CONSOLE, scope="read")
    approve(dev, body["user_code"])
    headers, _ = auth_for(CONSOLE)
    sent = f"grant_type={GRANT_TYPE}&device_code={body['device_code']}&scope=read+write"
    tokens = dev.simulate_post("/api/v1/tokens", body=sent, headers=headers)
    assert tokens.status_code == 200 and tokens.json["scope"] == "read"


def test_another_clients_device_code_is_refused_and_harmless(dev: testing.TestClient, clock: Any) -> None:
    body = started(dev, CONSOLE)
    stolen = poll(dev, body["device_code"], TV)
    assert assert_clean_error(stolen, 400, "invalid_grant")
    assert_clean_error(poll(dev, body["device_code"], CONSOLE), 400, "authorization_pending")
    clock.now += 5
    approve(dev, body["user_code"])
    assert_clean_error(poll(dev, body["device_code"], TV), 400, "invalid_grant")  # approved: still not theirs
    assert poll(dev, body["device_code"], CONSOLE).status_code == 200


def test_guessed_or_oversize_device_codes_get_clean_errors(dev: testing.TestClient) -> None:
    for code in ("A" * 43, "x", "A" * 300, "../../etc"):
        body = assert_clean_error(poll(dev, code), secrets_sent=[code])
        assert body["error"] in ("invalid_grant", "invalid_request")


def test_echoed_user_code_is_escaped(dev: testing.TestClient) -> None:
    page = open_device(dev, "user_code=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert "<script>" not in page.result.text and "&lt;script&gt;" in page.result.text
    typed = enter(dev, '"><img src=x onerror=alert(1)>')
    assert "<img" not in typed.result.text


def test_every_device_page_forbids_framing_and_scripts(dev: testing.TestClient) -> None:
    body = started(dev)
    for result in (
        open_device(dev).result,
        enter(dev, body["user_code"]).result,
        approve(dev, body["user_code"]),
    ):
        policy = result.headers["Content-Security-Policy"]
        assert result.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in policy
        assert "script-src" not in policy and "default-src 'none'" in policy
        assert (
            result.headers["Cache-Control"] == "no-store"
            and result.headers["Referrer-Policy"] in ("no-referrer", "same-origin")  # issue 18
        )


@pytest.fixture
def sso(make_app: MakeApp, sec_settings: Settings) -> testing.TestClient:
    return make_app(clients=device_clients(sec_settings), users=(cheap_user(VICTIM, VICTIM_PASSWORD),))


def session_consent(http: testing.TestClient) -> tuple[Browser, str]:
    """Return a signed-in browser on the consent-only /device page of a fresh request, and its device_code."""
    browser = Browser(http)
    answer(browser.sign_in(OPENID_QUERY))
    body = started(http)
    page = browser_enter(browser, body["user_code"])
    assert "Signed in as" in page.text and "sid" in browser.fields
    return browser, body["device_code"]


def refused(http: testing.TestClient, result: testing.Result, device_code: str) -> None:
    """Assert the consent POST approved nothing and fell back to a page without a session."""
    assert result.status_code == 400 and "Your device is connected" not in result.text
    assert "Signed in as" not in result.text
    assert assert_clean_error(poll(http, device_code), 400)["error"] == "authorization_pending"


@pytest.mark.parametrize("sid", ["A" * 43, ""])
def test_a_forged_sid_breaks_the_csrf_binding(sso: testing.TestClient, sid: str) -> None:
    browser, device_code = session_consent(sso)
    refused(sso, browser_decide(browser, sid=sid), device_code)


def test_a_stale_sid_of_an_earlier_session_is_refused(sso: testing.TestClient) -> None:
    browser, device_code = session_consent(sso)
    page = dict(browser.fields)
    answer(browser.sign_in({**OPENID_QUERY, "prompt": "login"}))  # a new session, same user
    browser.fields = page
    result = browser_decide(browser)
    refused(sso, result, device_code)
    assert 'name="password"' in result.text and "session has ended" in result.text


def test_a_session_of_another_user_cannot_approve_the_page(sso: testing.TestClient) -> None:
    victim, device_code = session_consent(sso)
    page = dict(victim.fields)
    # Someone else signs in in another tab of the same browser; the open page must not approve for them.
    answer(victim.sign_in({**OPENID_QUERY, "prompt": "login"}, VICTIM, VICTIM_PASSWORD))
    victim.fields = page
    result = browser_decide(victim)
    refused(sso, result, device_code)
    assert 'name="password"' in result.text


def test_a_logged_out_sessions_cookie_replayed_is_refused(sso: testing.TestClient) -> None:
    browser, device_code = session_consent(sso)
    copied, page = dict(browser.cookies), dict(browser.fields)
    assert browser.open("/logout").status_code == 200  # the confirmation page
    logged_out = browser.open("/logout", {**browser.fields, "logout": "yes"})
    assert logged_out.status_code == 200 and logged_out.cookies[SESSION].value == ""
    browser.cookies, browser.fields = copied, page  # the cookie kept from before the logout
    refused(sso, browser_decide(browser), device_code)
    # Entering a code again with it shows the password form, not "signed in as".
    page = browser_enter(browser, started(sso)["user_code"])
    assert 'name="password"' in page.text and "Signed in as" not in page.text


def test_a_session_consent_post_without_the_session_cookie_is_refused(sso: testing.TestClient) -> None:
    browser, device_code = session_consent(sso)
    browser.cookies.pop(SESSION)
    refused(sso, browser_decide(browser), device_code)


def test_the_session_page_never_approves_for_a_password_it_did_not_check(sso: testing.TestClient) -> None:
    # A session page's form posted with a password of another user goes through the password check.
    browser, device_code = session_consent(sso)
    result = browser_decide(browser, username=VICTIM, password="wrong")
    assert result.status_code == 400 and "not correct" in result.text
    assert assert_clean_error(poll(sso, device_code), 400)["error"] == "authorization_pending"
