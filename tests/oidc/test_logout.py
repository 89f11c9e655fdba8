"""RP-Initiated Logout and Back-Channel Logout through TestClient, and `jwtauth revoke --subject`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from http import server as httpserver
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import jwt
import pytest
from falcon import testing

from jwtauth.cli import main as cli
from jwtauth.config.clients import Client
from jwtauth.config.settings import Settings
from jwtauth.observability import Metrics
from jwtauth.oidc.backchannel import EVENT, BackChannel
from jwtauth.oidc.pairwise import subjects_of
from tests.authflow import parse_page
from tests.helpers import FIXTURES, USER, Clock, MakeApp, client_like, introspect, refresh, token
from tests.oidc.browser import SESSION, Browser, answer
from tests.oidc.flow import OPENID_QUERY, verified_id_token
from tests.support import REDIS_URL

LOGGED_OUT = "https://www.example.com/logged-out"
BC_URI = "https://bc.example.com/cb"
BC = {**OPENID_QUERY, "client_id": "bc", "redirect_uri": BC_URI}


class Receiver:
    """A local RP back-channel endpoint that records what it is sent and answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict[str, list[str]]] = []
        self.status = status
        outer = self

        class Handler(httpserver.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the stdlib's name
                length = int(self.headers["Content-Length"])
                outer.bodies.append(parse_qs(self.rfile.read(length).decode()))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = httpserver.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/backchannel"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int = 1, seconds: float = 5.0) -> None:
        deadline = time.monotonic() + seconds
        while len(self.bodies) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.bodies) >= count, self.bodies


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rp = Receiver()
    yield rp
    rp.server.shutdown()
    rp.server.server_close()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def http(make_app: MakeApp, settings: Settings, receiver: Receiver, metrics: Metrics) -> testing.TestClient:
    bc = client_like(
        settings, "bc", secret="bcsecret", redirect_uris=(BC_URI,), backchannel_logout_uri=receiver.url
    )
    return make_app(clients=(bc,), metrics=metrics)


def code_of(browser: Browser, query: dict[str, str], **post: str) -> str:
    """Sign in (or use the browser's session), consent if asked, and return the code."""
    result = browser.sign_in(query) if not browser.cookies.get(SESSION) else browser.get(query)
    if result.status_code == 200:
        result = browser.post(**post)
    return str(answer(result)["code"])


def code_tokens(http: testing.TestClient, browser: Browser, query: dict[str, str], **post: str) -> Any:
    auth = ("bc", "bcsecret") if query["client_id"] == "bc" else ("testclient", "testpassword")
    code = code_of(browser, query, **post)
    body = token(http, {"grant_type": "authorization_code", "code": code}, auth=auth)
    assert body.status_code == 200, body.text
    return body.json


def logout(browser: Browser, method: str = "GET", **params: str) -> testing.Result:
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in browser.cookies.items())}
    if method == "GET":
        return browser.http.simulate_get("/logout", query_string=urlencode(params), headers=headers)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return browser.http.simulate_post("/logout", body=urlencode(params), headers=headers)


def test_logout_with_a_hint_ends_the_session_its_families_and_redirects_with_state(
    http: testing.TestClient, receiver: Receiver, metrics: Metrics
) -> None:
    browser = Browser(http)
    query = {**OPENID_QUERY, "scope": "openid read"}
    first = code_tokens(http, browser, query)
    kept = code_tokens(http, browser, {**query, "scope": "openid offline_access", "prompt": "consent"})
    bc = code_tokens(http, browser, BC)
    copied = dict(browser.cookies)
    result = logout(browser, id_token_hint=first["id_token"], post_logout_redirect_uri=LOGGED_OUT, state="st")
    assert result.status_code == 303 and result.headers["Location"] == LOGGED_OUT + "?state=st"
    cleared = result.cookies[SESSION]
    assert cleared.value == "" and "1970" in result.headers["Set-Cookie"].split(SESSION)[1]
    # The copied cookie is dead too, and so are the session's grants, but not offline_access.
    browser.cookies = copied
    assert answer(browser.get({**query, "prompt": "none"}))["error"] == "login_required"
    assert refresh(http, first["refresh_token"]).json["error"] == "invalid_grant"
    assert introspect(http, first["access_token"]).json == {"active": False}
    assert refresh(http, kept["refresh_token"]).status_code == 200
    # Back-Channel Logout: the other client of the session gets a logout token.
    receiver.wait()
    (logout_token,) = receiver.bodies[0]["logout_token"]
    header = jwt.get_unverified_header(logout_token)
    assert header["typ"] == "logout+jwt"
    jwk = next(k for k in http.simulate_get("/jwks").json["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(
        logout_token,
        jwt.PyJWK(jwk).key,
        algorithms=[header["alg"]],
        audience="bc",
        issuer="http://testserver",
    )
    id_claims = verified_id_token(http, bc["id_token"], "bc")
    assert claims["sid"] == id_claims["sid"] and claims["sub"] == id_claims["sub"]
    assert claims["events"] == {EVENT: {}} and "nonce" not in claims and claims["jti"]
    assert len(receiver.bodies) == 1  # testclient registered no back-channel URI
    # The sender counts the delivery after the receiver has answered it, on its own thread.
    delivered = 'jwtauth_backchannel_logout_total{outcome="delivered"} 1.0'
    deadline = time.monotonic() + 5
    page = metrics.render()[0].decode()  # what the management listener's /metrics serves
    while delivered not in page and time.monotonic() < deadline:
        time.sleep(0.02)
        page = metrics.render()[0].decode()
    assert delivered in page


def test_a_code_of_the_session_not_yet_redeemed_dies_with_it(http: testing.TestClient) -> None:
    """Its family was written ahead and linked to the session: logout bars it, the code is over."""
    browser = Browser(http)
    query = {**OPENID_QUERY, "scope": "openid read"}
    first = code_tokens(http, browser, query)
    pending = answer(browser.get({**query, "prompt": "none"}))["code"]  # the same session, silently
    assert logout(browser, id_token_hint=first["id_token"]).status_code in (200, 303)
    late = token(http, {"grant_type": "authorization_code", "code": pending})
    assert late.status_code == 400 and late.json["error"] == "invalid_grant"
    assert refresh(http, first["refresh_token"]).json["error"] == "invalid_grant"


def test_a_code_of_a_client_that_may_not_refresh_dies_with_its_session_alone(
    make_app: MakeApp, settings: Settings
) -> None:
    """No family is written ahead of it, but its grant is linked to the session all the same
    (node-oidc-provider and Keycloak refuse such a code too); another session's code lives on."""
    grants = frozenset({"authorization_code"})
    http = make_app(clients=(client_like(settings, "testclient", secret="testpassword", grant_types=grants),))
    browser, elsewhere = Browser(http), Browser(http)
    query = {**OPENID_QUERY, "scope": "openid read"}
    first = code_tokens(http, browser, query)
    assert "refresh_token" not in first
    pending = code_of(browser, {**query, "prompt": "none"})
    other = code_of(elsewhere, query)
    assert logout(browser, id_token_hint=first["id_token"]).status_code in (200, 303)
    late = token(http, {"grant_type": "authorization_code", "code": pending})
    assert late.status_code == 400 and late.json["error"] == "invalid_grant"
    assert token(http, {"grant_type": "authorization_code", "code": other}).status_code == 200


def test_offline_access_keeps_nothing_past_logout_for_a_client_that_may_not_refresh(
    make_app: MakeApp, settings: Settings
) -> None:
    """offline_access keeps a refresh family past the session; without one its code dies too."""
    grants = frozenset({"authorization_code"})
    http = make_app(clients=(client_like(settings, "testclient", secret="testpassword", grant_types=grants),))
    browser = Browser(http)
    query = {**OPENID_QUERY, "scope": "openid offline_access read", "prompt": "consent"}
    first = code_tokens(http, browser, query)
    pending = code_of(browser, query)
    assert logout(browser, id_token_hint=first["id_token"]).status_code in (200, 303)
    late = token(http, {"grant_type": "authorization_code", "code": pending})
    assert late.status_code == 400 and late.json["error"] == "invalid_grant"


def test_logout_without_a_hint_asks_to_confirm(http: testing.TestClient) -> None:
    browser = Browser(http)
    code_tokens(http, browser, OPENID_QUERY)
    page = logout(browser)
    assert page.status_code == 200 and 'name="logout"' in page.text
    for name, cookie in page.cookies.items():
        browser.cookies[name] = cookie.value
    fields = {**parse_page(page.text).hidden, "logout": "yes"}
    done = logout(browser, "POST", **fields)
    assert done.status_code == 200 and "signed out" in done.text
    assert answer(browser.get({**OPENID_QUERY, "prompt": "none"}))["error"] == "login_required"


def test_logout_without_a_session_shows_the_signed_out_page_or_redirects(http: testing.TestClient) -> None:
    browser = Browser(http)
    assert logout(browser).status_code == 200
    result = logout(browser, client_id="testclient", post_logout_redirect_uri=LOGGED_OUT)
    assert result.headers["Location"] == LOGGED_OUT


def test_under_https_the_cleared_cookie_keeps_its_host_prefix_attributes(make_app: MakeApp) -> None:
    http = make_app(issuer="https://id.example.com")
    browser = Browser(http)
    answer(browser.sign_in(OPENID_QUERY))
    done = logout(browser)
    assert done.status_code == 200  # a confirmation page: no hint
    cleared = http.simulate_get("/logout", headers={"Cookie": "x=1"})  # no session: just signed out
    header = cleared.headers["Set-Cookie"]
    assert header.startswith('__Host-jwtauth-session=""') and "Secure" in header and "1970" in header


def test_discovery_lists_logout(http: testing.TestClient) -> None:
    meta = http.simulate_get("/.well-known/openid-configuration").json
    assert meta["end_session_endpoint"] == "http://testserver/logout"
    assert meta["backchannel_logout_supported"] and meta["backchannel_logout_session_supported"]
    assert meta["frontchannel_logout_supported"] is False


class Inline(Executor):
    """Run submitted work at once, so delivery is deterministic in a test."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


class Counted:
    def __init__(self) -> None:
        self.outcomes: list[str] = []

    def backchannel(self, outcome: str) -> None:
        self.outcomes.append(outcome)


@pytest.mark.parametrize(
    ("replies", "outcomes"),
    [
        ([503, 200], ["retried", "delivered"]),
        ([204], ["delivered"]),
        ([400], ["failed"]),
        ([OSError(), 500, OSError(), 502], ["retried", "retried", "retried", "failed"]),
    ],
)
def test_delivery_retries_network_errors_and_5xx_only(
    keyring: Any, settings: Settings, replies: list[Any], outcomes: list[str]
) -> None:
    pending = list(replies)
    slept: list[float] = []

    def deliver(url: str, form: dict[str, str], timeout: float) -> int:
        assert timeout <= 5 and "logout_token" in form
        reply = pending.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return int(reply)

    counted = Counted()
    channel = BackChannel(
        "http://testserver",
        keyring,
        counted,
        deliver=deliver,
        delays=(1, 2, 3),
        executor=Inline(),
        sleep=slept.append,
        subjects=subjects_of(settings),
    )
    client: Client = client_like(settings, "bc", backchannel_logout_uri=BC_URI)
    assert channel.notify([client, settings.clients[0]], sub="s", sid="x") == 1
    assert counted.outcomes == outcomes
    assert slept == [1, 2, 3][: len(replies) - 1]


def test_revoke_subject_ends_browser_sessions(
    make_app: MakeApp,
    real_redis: tuple[Any, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    clock: Clock,
    keys_dir: Path,
) -> None:
    conn, prefix = real_redis
    clock.now = time.time() - 5  # the command dates "not before" by the real clock
    http = make_app(store=conn, redis_prefix=prefix)
    browser = Browser(http)
    code_tokens(http, browser, OPENID_QUERY)
    monkeypatch.setenv("JWTAUTH_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("JWTAUTH_REDIS_PREFIX", prefix)
    monkeypatch.setenv("JWTAUTH_KEYS_DIR", str(keys_dir))  # the app's pepper (conftest keys_dir)
    assert cli.main(["revoke", "--subject", USER, "--config", str(FIXTURES)]) == 0
    assert "ended every browser session" in capsys.readouterr().out
    assert answer(browser.get({**OPENID_QUERY, "prompt": "none"}))["error"] == "login_required"
