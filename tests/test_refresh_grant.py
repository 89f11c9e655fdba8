"""HTTP tests of the refresh_token grant (RFC 6749 §6): rotation, replay, reuse, scope, lifetimes."""

from __future__ import annotations

from typing import Any

import pytest
from falcon import testing

from jwtauth.config.settings import Settings
from jwtauth.store.connection import connect
from tests.helpers import (
    API,
    OTHER,
    REPORTS,
    TOKENS,
    USER,
    Clock,
    MakeApp,
    active,
    assert_error,
    basic,
    call,
    cheap_user,
    claims_of,
    client_like,
    introspect,
    login,
    refresh,
    tokens_of,
)
from tests.support import free_port

GRACE = 5.0  # refresh_grace in the demo fixtures


@pytest.fixture
def http(make_app: MakeApp, settings: Settings) -> testing.TestClient:
    """An app with a second confidential client `other` and a public client `spa`."""
    clients = (client_like(settings, "other"), client_like(settings, "spa", public=True))
    return make_app(clients=clients)


def test_old_readme_curl_returns_a_new_pair(client: testing.TestClient) -> None:
    _, first = tokens_of(login(client))
    # curl -u testclient:testpassword localhost:8000/api/v1/tokens/ \
    #   -d 'grant_type=refresh_token&refresh_token=…'
    result = client.simulate_post(
        "/api/v1/tokens/", body=f"grant_type=refresh_token&refresh_token={first}", headers=basic()
    )
    access, second = tokens_of(result)
    assert second != first and second.split(".")[0] == first.split(".")[0]
    assert result.headers["Cache-Control"] == "no-store"
    assert result.json["token_type"] == "Bearer" and result.json["scope"] == "read write"
    claims = claims_of(access)
    assert (claims["sub"], claims["client_id"], claims["aud"], claims["fid"]) == (
        USER,
        "testclient",
        API,
        first.split(".")[0],
    )


def test_rotation_keeps_the_login_time_and_kills_the_old_token(
    http: testing.TestClient, clock: Clock
) -> None:
    login_access, first = tokens_of(login(http))
    clock.now += 60
    access, second = tokens_of(refresh(http, first))
    assert claims_of(access)["auth_time"] == claims_of(login_access)["auth_time"] == int(clock.now - 60)
    assert claims_of(access)["iat"] == int(clock.now)
    assert not active(http, first) and active(http, second)


def test_chain_of_100_rotations(http: testing.TestClient, clock: Clock) -> None:
    _, token = tokens_of(login(http))
    seen = {token}
    for _ in range(100):
        clock.now += 1
        _, token = tokens_of(refresh(http, token))
        seen.add(token)
    assert len(seen) == 101
    claims = introspect_json(http, token)
    assert claims["jti"].endswith(":101")


def introspect_json(http: testing.TestClient, token: str) -> dict[str, Any]:
    result = introspect(http, token)
    assert result.status_code == 200
    body: dict[str, Any] = result.json
    return body


def test_a_lost_response_retried_within_grace_gets_the_same_successor(
    http: testing.TestClient, clock: Clock
) -> None:
    _, first = tokens_of(login(http))
    access_a, second = tokens_of(refresh(http, first))
    clock.now += GRACE - 1
    access_b, again = tokens_of(refresh(http, first))
    assert again == second  # never a second live successor
    assert access_b != access_a and claims_of(access_b)["jti"] != claims_of(access_a)["jti"]
    # The family did not advance: the successor rotates normally, once.
    _, third = tokens_of(refresh(http, second))
    assert active(http, third) and not active(http, second)


def test_reuse_after_grace_revokes_the_whole_family(http: testing.TestClient, clock: Clock) -> None:
    login_access, first = tokens_of(login(http))
    access, second = tokens_of(refresh(http, first))
    clock.now += GRACE
    reused = refresh(http, first)
    assert_error(reused, 400, "invalid_grant")
    assert "already used" in reused.json["error_description"]
    # RFC 9700 §4.14.2: the newest token fails too, and the family's access tokens read inactive.
    assert_error(refresh(http, second), 400, "invalid_grant")
    assert not active(http, second)
    assert not active(http, access) and not active(http, login_access)


def test_an_older_generation_is_reuse_even_within_grace(http: testing.TestClient) -> None:
    _, first = tokens_of(login(http))
    _, second = tokens_of(refresh(http, first))
    _, third = tokens_of(refresh(http, second))
    assert_error(refresh(http, first), 400, "invalid_grant")
    assert_error(refresh(http, third), 400, "invalid_grant")


def test_another_clients_token_is_invalid_grant_and_revokes_nothing(http: testing.TestClient) -> None:
    access, token = tokens_of(login(http))
    stolen = refresh(http, token, auth=OTHER)
    unknown = refresh(http, token.split(".")[0] + "." + "A" * 43, auth=OTHER)
    assert_error(stolen, 400, "invalid_grant")
    assert stolen.json == unknown.json  # no hint that the token is real
    assert active(http, access)
    tokens_of(refresh(http, token))  # the owner's family is intact


def test_a_guessed_secret_revokes_nothing(http: testing.TestClient, clock: Clock) -> None:
    access, token = tokens_of(login(http))
    family_id = token.split(".")[0]
    for guess in ("A" * 43, "B" * 43, "_" * 42 + "A"):
        assert_error(refresh(http, f"{family_id}.{guess}"), 400, "invalid_grant")
    clock.now += GRACE + 1
    assert active(http, access)
    tokens_of(refresh(http, token))


@pytest.mark.parametrize("token", ["nonsense", "a.b", "x" * 5000, "eyJhbGciOiJFUzI1NiJ9.e30.sig"])
def test_unknown_or_malformed_tokens_are_invalid_grant(http: testing.TestClient, token: str) -> None:
    assert_error(refresh(http, token), 400, "invalid_grant")


def test_missing_refresh_token_is_invalid_request(http: testing.TestClient) -> None:
    assert_error(call(http, TOKENS, {"grant_type": "refresh_token"}), 400, "invalid_request")


def test_scope_narrows_for_one_access_token_and_the_family_keeps_its_scope(http: testing.TestClient) -> None:
    _, first = tokens_of(login(http))
    narrowed = refresh(http, first, scope="read")
    assert narrowed.json["scope"] == "read" and claims_of(narrowed.json["access_token"])["scope"] == "read"
    assert introspect_json(http, narrowed.json["refresh_token"])["scope"] == "read write"
    full = refresh(http, narrowed.json["refresh_token"])
    assert full.json["scope"] == "read write", full.text


def test_a_wider_scope_is_invalid_scope_and_does_not_burn_the_token(
    http: testing.TestClient, clock: Clock
) -> None:
    _, token = tokens_of(login(http, scope="read"))
    for scope in ("read write", "admin", "read  read"):
        assert_error(refresh(http, token, scope=scope), 400, "invalid_scope")
    clock.now += GRACE + 1  # past the grace: had it rotated, presenting it now would be reuse
    assert refresh(http, token).json["scope"] == "read"


def test_resource_picks_among_the_grants_audience_only(http: testing.TestClient, clock: Clock) -> None:
    _, token = tokens_of(login(http, resource=REPORTS))
    assert_error(refresh(http, token, resource=API), 400, "invalid_target")
    clock.now += GRACE + 1
    result = refresh(http, token, resource=REPORTS)
    assert claims_of(result.json["access_token"])["aud"] == REPORTS


def test_a_public_client_refreshes_with_its_client_id(http: testing.TestClient) -> None:
    _, first = tokens_of(login(http, auth="spa"))
    access, second = tokens_of(refresh(http, first, auth="spa"))
    assert claims_of(access)["client_id"] == "spa"
    assert_error(refresh(http, second), 400, "invalid_grant")  # bound to spa, not testclient


def test_idle_timeout_and_absolute_lifetime(make_app: MakeApp, clock: Clock) -> None:
    http = make_app(refresh_idle_ttl=100, refresh_absolute_ttl=250)
    _, idle = tokens_of(login(http))
    clock.now += 100
    assert_error(refresh(http, idle), 400, "invalid_grant")
    _, token = tokens_of(login(http))
    for _ in range(2):
        clock.now += 99
        _, token = tokens_of(refresh(http, token))
    clock.now += 52  # 250 s after login: used 52 s ago, but the grant's lifetime is over
    assert_error(refresh(http, token), 400, "invalid_grant")


def test_a_client_without_the_refresh_grant_is_unauthorized(
    make_app: MakeApp, settings: Settings, store: Any
) -> None:
    limited = client_like(settings, "limited", grant_types=frozenset({"password"}))
    http = make_app(clients=(limited,))
    _, token = tokens_of(login(http))
    result = refresh(http, token, auth=("limited", "othersecret"))
    assert_error(result, 400, "unauthorized_client")


def test_a_removed_user_cannot_refresh(make_app: MakeApp) -> None:
    before = make_app(users=(cheap_user("carol", "carol-pw"),))
    access, token = tokens_of(login(before, username="carol", password="carol-pw"))
    after = make_app()  # the same store, carol deleted from the config
    assert_error(refresh(after, token), 400, "invalid_grant")
    assert not active(before, access)
    assert_error(refresh(before, token), 400, "invalid_grant")


def test_an_unreachable_store_is_503_not_500(make_app: MakeApp) -> None:
    http = make_app()
    _, token = tokens_of(login(http))
    dead = connect(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    result = refresh(make_app(store=dead), token)
    assert_error(result, 503, "temporarily_unavailable")
