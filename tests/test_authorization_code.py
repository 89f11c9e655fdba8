"""The authorization_code grant: the old README exchange, single use, PKCE, redirect_uri, races."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
import requests
from falcon import testing

from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from jwtauth.oauth import pkce
from jwtauth.store import CodeRecord, CodeStore, RefreshStore
from tests.authflow import authorize, code_from, parse_page, redirect_params
from tests.helpers import FORM, ISSUER, PEPPER, README_QUERY, USER, Clock, MakeApp, basic, client_like, race
from tests.support import REDIS_URL

VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = pkce.s256(VERIFIER)
PKCE_QUERY = {**README_QUERY, "code_challenge": CHALLENGE, "code_challenge_method": "S256"}
TWO_URIS = ("https://a.example.com/cb", "https://b.example.com/cb")

MakeClient = Callable[..., testing.TestClient]


@pytest.fixture
def make_client(make_app: MakeApp) -> MakeClient:
    """Return a factory for a TestClient on an app with extra clients (real time unless clock=)."""

    def make(*clients: Any, clock: Callable[[], float] | None = None, **changes: Any) -> testing.TestClient:
        return make_app(clients=clients, clock=clock, **changes)

    return make


def exchange(
    client: testing.TestClient,
    code: str,
    *,
    auth: tuple[str, str] | None = ("testclient", "testpassword"),
    **params: str,
) -> testing.Result:
    """POST grant_type=authorization_code to the token endpoint, as the README's curl does."""
    headers = basic(*auth) if auth else FORM
    body = urlencode({"grant_type": "authorization_code", "code": code, **params})
    return client.simulate_post("/api/v1/tokens/", body=body, headers=headers)


def claims_of(keyring: KeyRing, token: str) -> dict[str, Any]:
    key = keyring.published(jwt.get_unverified_header(token)["kid"])
    assert key is not None
    audience = jwt.decode(token, options={"verify_signature": False})["aud"]
    decoded: dict[str, Any] = jwt.decode(
        token, key.private_key.public_key(), algorithms=[key.alg], audience=audience
    )
    return decoded


def assert_invalid_grant(result: testing.Result, words: str = "") -> None:
    assert result.status_code == 400, result.text
    assert result.json["error"] == "invalid_grant"
    assert words in result.json.get("error_description", "")
    assert result.headers["Cache-Control"] == "no-store"


def refresh_store(store: Any, settings: Settings) -> RefreshStore:
    return RefreshStore(store, pepper=PEPPER, prefix=settings.redis_prefix)


# --- the old README flow --------------------------------------------------------------------------


def test_readme_exchange_without_redirect_uri_or_pkce_returns_access_and_refresh_tokens(
    client: testing.TestClient, keyring: KeyRing, store: Any, settings: Settings
) -> None:
    code = code_from(authorize(client, README_QUERY))
    result = exchange(client, code)
    assert result.status_code == 200, result.text
    assert result.headers["Cache-Control"] == "no-store"
    body = result.json
    assert body["token_type"] == "Bearer" and body["scope"] == "read write" and body["expires_in"] == 900
    assert {"access_token", "refresh_token", "expires_at"} <= set(body)
    claims = claims_of(keyring, body["access_token"])
    assert claims["sub"] == USER and claims["client_id"] == "testclient" and claims["iss"] == ISSUER
    assert claims["aud"] == "https://api.example.com" and isinstance(claims["auth_time"], int)
    family_id = body["refresh_token"].split(".")[0]
    assert claims["fid"] == family_id
    family = refresh_store(store, settings).lookup(body["refresh_token"], now=claims["iat"])
    assert family is not None
    assert (family.subject, family.client_id, family.scope) == (USER, "testclient", "read write")
    assert family.audience == ("https://api.example.com",)


def test_body_authentication_works_too(client: testing.TestClient) -> None:
    code = code_from(authorize(client, README_QUERY))
    result = exchange(client, code, auth=None, client_id="testclient", client_secret="testpassword")
    assert result.status_code == 200, result.text


def test_narrower_scope_and_other_resource_carry_through(
    client: testing.TestClient, keyring: KeyRing
) -> None:
    query = {**README_QUERY, "scope": "read", "resource": "https://reports.example.com"}
    code = code_from(authorize(client, query))
    result = exchange(client, code, resource="https://reports.example.com")
    assert result.status_code == 200, result.text
    claims = claims_of(keyring, result.json["access_token"])
    assert claims["scope"] == "read" and claims["aud"] == "https://reports.example.com"


def test_a_different_resource_at_the_token_endpoint_is_invalid_target(client: testing.TestClient) -> None:
    code = code_from(authorize(client, README_QUERY))
    result = exchange(client, code, resource="https://reports.example.com")
    assert result.status_code == 400 and result.json["error"] == "invalid_target"


# --- single use (RFC 6749 §4.1.2) -----------------------------------------------------------------


def test_second_redemption_fails_and_revokes_the_family(
    client: testing.TestClient, store: Any, settings: Settings, keyring: KeyRing
) -> None:
    code = code_from(authorize(client, README_QUERY))
    first = exchange(client, code)
    assert first.status_code == 200
    assert_invalid_grant(exchange(client, code), "already used")
    refresh = refresh_store(store, settings)
    family_id = claims_of(keyring, first.json["access_token"])["fid"]
    assert refresh.is_revoked(family_id)  # introspection reports the access token inactive
    assert refresh.lookup(first.json["refresh_token"], now=0) is None


def test_a_race_between_take_and_bind_still_revokes_the_family(
    client: testing.TestClient, store: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replay that lands after the take but before the family is bound: the winner revokes.

    Only the two-trip path has that window: a code issued without its family written ahead (by
    an earlier release, or on Cluster). One from /authorize starts its family inside the take.
    """
    codes = CodeStore(store, pepper=PEPPER, prefix=settings.redis_prefix)
    record = CodeRecord("testclient", None, "read", USER, None, None, time.time())
    code = codes.issue(record, ttl=60, now=time.time())
    replay: list[testing.Result] = []
    original = RefreshStore.create

    def create_then_replay(self: RefreshStore, *args: Any, **kwargs: Any) -> Any:
        replay.append(exchange(client, code))  # the code is taken, the family not yet bound
        return original(self, *args, **kwargs)

    monkeypatch.setattr(RefreshStore, "create", create_then_replay)
    first = exchange(client, code)
    assert first.status_code == 200  # exactly one redemption wins the code ...
    assert_invalid_grant(replay[0], "already used")
    family_id = first.json["refresh_token"].split(".")[0]
    assert refresh_store(store, settings).is_revoked(family_id)  # ... and its tokens are dead


def test_unknown_and_expired_codes_are_invalid_grant(make_client: MakeClient) -> None:
    clock = Clock()
    client = make_client(clock=clock)
    assert_invalid_grant(exchange(client, "A" * 43), "invalid or expired")
    code = code_from(authorize(client, README_QUERY))
    clock.now += 60
    assert_invalid_grant(exchange(client, code), "invalid or expired")


def test_missing_or_oversized_code_is_invalid_request(client: testing.TestClient) -> None:
    body = urlencode({"grant_type": "authorization_code"})
    result = client.simulate_post("/api/v1/tokens", body=body, headers=basic())
    assert result.status_code == 400 and result.json["error"] == "invalid_request"
    assert exchange(client, "A" * 300).json["error"] == "invalid_request"


def test_another_client_cannot_redeem_nor_burn_the_code(make_client: MakeClient, settings: Settings) -> None:
    client = make_client(client_like(settings, "other", secret="othersecret"))
    code = code_from(authorize(client, README_QUERY))
    assert_invalid_grant(exchange(client, code, auth=("other", "othersecret")))
    assert exchange(client, code).status_code == 200  # the owner still can


def test_the_code_needs_client_authentication(client: testing.TestClient) -> None:
    code = code_from(authorize(client, README_QUERY))
    result = exchange(client, code, auth=("testclient", "wrong"))
    assert result.status_code == 401 and result.json["error"] == "invalid_client"
    assert exchange(client, code).status_code == 200


# --- redirect_uri (RFC 6749 §4.1.3, documented in the grant module) ---------------------------


def test_redirect_uri_when_sent_must_match(client: testing.TestClient) -> None:
    code = code_from(authorize(client, README_QUERY))
    assert_invalid_grant(exchange(client, code, redirect_uri="https://www.example.com/cb"), "redirect_uri")
    code = code_from(authorize(client, README_QUERY))
    assert exchange(client, code, redirect_uri="https://www.example.com").status_code == 200
    # RFC 3986 §6.2.3: an empty path is "/", the only spelling that may differ (tests/oidc).
    code = code_from(authorize(client, README_QUERY))
    assert exchange(client, code, redirect_uri="https://www.example.com/").status_code == 200


def test_redirect_uri_may_be_sent_when_the_request_omitted_it(client: testing.TestClient) -> None:
    query = {k: v for k, v in README_QUERY.items() if k != "redirect_uri"}
    code = code_from(authorize(client, query))
    assert exchange(client, code, redirect_uri="https://www.example.com").status_code == 200


def test_omitted_redirect_uri_needs_one_registered_uri_or_pkce(
    make_client: MakeClient, settings: Settings
) -> None:
    client = make_client(client_like(settings, "two", redirect_uris=TWO_URIS))
    auth = ("two", "othersecret")
    query = {**README_QUERY, "client_id": "two", "redirect_uri": TWO_URIS[1]}
    code = code_from(authorize(client, query))
    assert_invalid_grant(exchange(client, code, auth=auth), "redirect_uri is required")
    code = code_from(authorize(client, query))
    assert exchange(client, code, auth=auth, redirect_uri=TWO_URIS[1]).status_code == 200
    code = code_from(
        authorize(client, {**query, **PKCE_QUERY, "client_id": "two", "redirect_uri": TWO_URIS[1]})
    )
    assert exchange(client, code, auth=auth, code_verifier=VERIFIER).status_code == 200


# --- PKCE (RFC 7636 §4.6, RFC 9700 §2.1.1) ---------------------------------------------------------


def test_pkce_verifier_is_checked(client: testing.TestClient) -> None:
    code = code_from(authorize(client, PKCE_QUERY))
    assert exchange(client, code, code_verifier=VERIFIER).status_code == 200


def test_missing_verifier_is_invalid_grant(client: testing.TestClient) -> None:
    code = code_from(authorize(client, PKCE_QUERY))
    assert_invalid_grant(exchange(client, code), "code_verifier is required")


def test_wrong_verifier_is_invalid_grant_and_burns_nothing(client: testing.TestClient) -> None:
    code = code_from(authorize(client, PKCE_QUERY))
    assert_invalid_grant(exchange(client, code, code_verifier="x" * 43), "does not match")
    # Checked before the take: a thief without the verifier cannot destroy the victim's code.
    assert exchange(client, code, code_verifier=VERIFIER).status_code == 200


def test_malformed_verifier_is_refused_before_the_code_is_touched(client: testing.TestClient) -> None:
    code = code_from(authorize(client, PKCE_QUERY))
    result = exchange(client, code, code_verifier="short")
    assert result.status_code == 400 and result.json["error"] == "invalid_request"
    assert exchange(client, code, code_verifier=VERIFIER).status_code == 200


def test_verifier_for_a_code_without_challenge_is_a_downgrade(client: testing.TestClient) -> None:
    code = code_from(authorize(client, README_QUERY))
    assert_invalid_grant(exchange(client, code, code_verifier=VERIFIER), "without code_challenge")


def test_public_client_redeems_with_client_id_and_verifier(
    make_client: MakeClient, settings: Settings
) -> None:
    spa = client_like(settings, "spa", public=True, grant_types=frozenset({"authorization_code"}))
    client = make_client(spa)
    query = {**PKCE_QUERY, "client_id": "spa"}
    code = code_from(authorize(client, query))
    assert_invalid_grant(exchange(client, code, auth=None, client_id="spa"), "code_verifier is required")
    code = code_from(authorize(client, query))
    result = exchange(client, code, auth=None, client_id="spa", code_verifier=VERIFIER)
    assert result.status_code == 200, result.text
    assert "refresh_token" not in result.json  # the client is not configured for refresh_token


def test_public_client_code_without_challenge_is_refused(
    make_client: MakeClient, settings: Settings, store: Any
) -> None:
    """Defence in depth: a record without challenge for a PKCE client (e.g. config changed)."""
    client = make_client(client_like(settings, "spa", public=True))
    codes = CodeStore(store, pepper=PEPPER, prefix=settings.redis_prefix)
    code = codes.issue(CodeRecord("spa", None, "read", USER, None, None, 0.0), ttl=60, now=time.time())
    assert_invalid_grant(exchange(client, code, auth=None, client_id="spa"), "must use PKCE")


def test_client_without_the_grant_is_unauthorized(make_client: MakeClient, settings: Settings) -> None:
    limited = client_like(settings, "limited", grant_types=frozenset({"client_credentials"}))
    client = make_client(limited)
    result = exchange(client, "A" * 43, auth=("limited", "othersecret"))
    assert result.status_code == 400 and result.json["error"] == "unauthorized_client"


def test_without_refresh_grant_no_family_is_created(
    make_client: MakeClient, settings: Settings, keyring: KeyRing, store: Any
) -> None:
    noref = client_like(settings, "noref", grant_types=frozenset({"authorization_code"}))
    client = make_client(noref)
    code = code_from(authorize(client, {**README_QUERY, "client_id": "noref"}))
    result = exchange(client, code, auth=("noref", "othersecret"))
    assert result.status_code == 200 and "refresh_token" not in result.json
    assert "fid" not in claims_of(keyring, result.json["access_token"])
    assert not [k for k in store.keys("*") if b"{f:" in k]


# --- concurrency on a real Redis with two workers --------------------------------------------------


def _browser_code(base: str) -> str:
    """Get a code from a running server the way a browser would, with requests."""
    session = requests.Session()
    page = session.get(base + "/authorize", params=README_QUERY, timeout=5)
    assert page.status_code == 200, page.text
    form = {**parse_page(page.text).hidden, "username": USER, "password": "testpassword", "decision": "allow"}
    result = session.post(base + "/authorize", data=form, allow_redirects=False, timeout=5)
    assert result.status_code == 303, result.text
    return redirect_params(result.headers["Location"])["code"]


def _race(base: str, code: str, threads: int = 20) -> list[requests.Response]:
    """Redeem `code` from `threads` threads released at the same instant."""

    def redeem() -> requests.Response:
        with requests.Session() as session:
            return session.post(
                base + "/api/v1/tokens/",
                auth=("testclient", "testpassword"),
                data={"grant_type": "authorization_code", "code": code},
                timeout=15,
            )

    return race(redeem, threads)


@pytest.mark.redis
@pytest.mark.e2e
def test_twenty_concurrent_redemptions_on_two_workers_yield_exactly_one_token(
    serve: Callable[..., Any], real_redis: tuple[Any, str]
) -> None:
    conn, prefix = real_redis  # the fixture deletes every key under prefix afterwards
    env = {"JWTAUTH_REDIS_URL": REDIS_URL, "JWTAUTH_REDIS_PREFIX": prefix}
    with serve(workers=2, env=env) as server:
        for _ in range(3):  # a few rounds: each is a fresh race
            results = _race(server.base, _browser_code(server.base))
            statuses = sorted(r.status_code for r in results)
            assert statuses == [200] + [400] * 19, [r.text for r in results if r.status_code != 400]
            assert {r.json()["error"] for r in results if r.status_code == 400} == {"invalid_grant"}
            winner = next(r.json() for r in results if r.status_code == 200)
            family_id = winner["refresh_token"].split(".")[0]
            # 19 replays arrived: whichever way they raced the bind, the family is revoked.
            assert RefreshStore(conn, pepper=PEPPER, prefix=prefix).is_revoked(family_id)
