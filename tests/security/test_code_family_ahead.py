"""A code from /authorize starts its refresh family inside its take (issue 20, one round trip).

What is written ahead at /authorize (the subject-index entry, the session link, the family's
sealed subject in the code's hash) must not open a way around the rules of the two-trip path:
a refused exchange changes nothing, a replay still revokes, a concurrent redemption cannot
leave a live family behind, a sealed subject moved to another code opens nothing, a client
that lost the refresh_token grant starts no family, and an entry whose code is never redeemed
revokes nothing. RFC 6749 §4.1.2, §4.1.3; RFC 9700 §4.14.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from falcon import testing

from jwtauth.config.settings import Settings
from jwtauth.store import CodeStore, RefreshStore
from jwtauth.store.pepper import Pepper
from tests.authflow import authorize, code_from
from tests.dpopkit import DPoPKey
from tests.helpers import (
    API,
    DEMO,
    PEPPER,
    README_QUERY,
    REPORTS,
    SPA,
    SPA_URI,
    USER,
    VICTIM,
    VICTIM_PASSWORD,
    Clock,
    MakeApp,
    assert_clean_error,
    call,
    client_like,
    pkce_pair,
    race,
    redis_trips,
    refresh,
    token,
)

Snapshot = Callable[[], dict[bytes, Any]]
SPA_FLOW = {"response_type": "code", "client_id": SPA, "redirect_uri": SPA_URI}


def redeem(http: testing.TestClient, code: str, auth: Any = DEMO, **params: str) -> testing.Result:
    return token(http, {"grant_type": "authorization_code", "code": code, **params}, auth=auth)


def families(store: Any) -> list[bytes]:
    return [key for key in store.scan_iter(_type="hash") if b"{f:" in key]


def test_an_exchange_of_a_code_from_authorize_is_one_round_trip(http: testing.TestClient, store: Any) -> None:
    assert redeem(http, code_from(authorize(http, README_QUERY))).status_code == 200  # scripts loaded
    code = code_from(authorize(http, README_QUERY))
    with redis_trips(store) as trips:
        exchanged = redeem(http, code)
    assert exchanged.status_code == 200 and exchanged.json["refresh_token"]
    assert trips == ["EVALSHA"]  # the take, which also started and bound the family
    assert refresh(http, exchanged.json["refresh_token"]).status_code == 200


def test_refused_exchanges_change_nothing_and_start_no_family(
    http: testing.TestClient, state: Snapshot, store: Any
) -> None:
    verifier, challenge = pkce_pair()
    query = {**SPA_FLOW, "code_challenge": challenge, "code_challenge_method": "S256"}
    code = code_from(authorize(http, query))
    before = state()
    attempts: list[tuple[Any, dict[str, str]]] = [
        (SPA, {"code_verifier": pkce_pair()[0], "redirect_uri": SPA_URI}),  # a thief's verifier
        (SPA, {"code_verifier": verifier, "redirect_uri": "https://spa.example.com/other"}),
        (SPA, {"redirect_uri": SPA_URI}),  # no verifier: a downgrade
        (SPA, {"code_verifier": verifier, "redirect_uri": SPA_URI, "resource": "https://evil.example"}),
        (DEMO, {"code_verifier": verifier, "redirect_uri": SPA_URI}),  # another client
    ]
    for auth, params in attempts:
        result = redeem(http, code, auth=auth, **params)
        assert result.status_code == 400 and result.json["error"] in {"invalid_grant", "invalid_target"}
        assert state() == before, params
    assert families(store) == []
    won = redeem(http, code, auth=SPA, code_verifier=verifier, redirect_uri=SPA_URI)
    assert won.status_code == 200, won.text
    assert refresh(http, won.json["refresh_token"], auth=SPA).status_code == 200


def test_concurrent_redemptions_leave_no_live_family(http: testing.TestClient, store: Any) -> None:
    code = code_from(authorize(http, README_QUERY))
    assert_clean_error(redeem(http, "not-a-code"), 400, "invalid_grant")  # the secret proven once
    results = race(lambda: redeem(http, code), threads=8)
    assert sorted(r.status_code for r in results) == [200] + [400] * 7
    (winner,) = (r.json for r in results if r.status_code == 200)
    # The confidential client's replays prove it is the client: the family dies (RFC 6749 §4.1.2).
    assert_clean_error(refresh(http, winner["refresh_token"]), 400, "invalid_grant")
    assert families(store) == []


def test_a_sealed_subject_moved_to_another_code_opens_nothing(
    http: testing.TestClient, store: Any, sec_settings: Settings
) -> None:
    """Someone who can write to Redis moves the victim's prepared family onto their own code."""
    mine = code_from(authorize(http, README_QUERY))
    victims = code_from(authorize(http, README_QUERY, username=VICTIM, password=VICTIM_PASSWORD))
    codes = {key: store.hget(key, "fsub") for key in store.scan_iter(match="*{c:*}", _type="hash")}
    assert len(codes) == 2 and all(codes.values())
    first, second = codes
    store.hset(first, "fsub", codes[second])
    store.hset(second, "fsub", codes[first])
    for code in (mine, victims):
        exchanged = redeem(http, code)
        assert exchanged.status_code == 200  # the code's own record is intact
        # The family's subject is sealed to the family the code derives: moved, it does not open.
        assert_clean_error(refresh(http, exchanged.json["refresh_token"]), 400, "invalid_grant")
    # The index still follows the code, not the moved value: the victim's "log out everywhere"
    # ends the family the victim's code started.
    refresh_store = RefreshStore(store, pepper=PEPPER, prefix=sec_settings.redis_prefix)
    assert refresh_store.revoke_all(subject=VICTIM) == 1


def test_a_client_that_lost_the_refresh_grant_starts_no_family(
    http: testing.TestClient, make_app: MakeApp, sec_settings: Settings, store: Any
) -> None:
    code = code_from(authorize(http, README_QUERY))  # written ahead: the client could refresh
    no_refresh = client_like(
        sec_settings, DEMO[0], secret=DEMO[1], grant_types=frozenset({"authorization_code"})
    )
    later = make_app(clients=(no_refresh,))
    exchanged = redeem(later, code)
    assert exchanged.status_code == 200, exchanged.text
    assert "refresh_token" not in exchanged.json and families(store) == []


def test_log_out_everywhere_ends_the_codes_not_yet_redeemed_and_their_entries(
    http: testing.TestClient, store: Any, sec_settings: Settings
) -> None:
    pending = code_from(authorize(http, README_QUERY))
    redeemed = redeem(http, code_from(authorize(http, README_QUERY)))
    refresh_store = RefreshStore(store, pepper=PEPPER, prefix=sec_settings.redis_prefix)
    assert refresh_store.revoke_all(subject=USER) == 1  # the one family that exists
    assert_clean_error(refresh(http, redeemed.json["refresh_token"]), 400, "invalid_grant")
    # The code issued before it carries a grant that is over: refused, and nothing starts.
    assert_clean_error(redeem(http, pending), 400, "invalid_grant")
    assert families(store) == []
    assert [key for key in store.scan_iter(_type="zset") if b"{s:" in key] == []  # no entry left
    # A sign-in after it is a new grant.
    assert redeem(http, code_from(authorize(http, README_QUERY))).status_code == 200


def no_refresh_app(make_app: MakeApp, settings: Settings) -> testing.TestClient:
    """The demo client without the refresh_token grant: no family is written ahead of its codes."""
    grants = frozenset({"authorization_code"})
    return make_app(clients=(client_like(settings, DEMO[0], secret=DEMO[1], grant_types=grants),))


def test_log_out_everywhere_ends_the_codes_of_a_client_that_may_not_refresh(
    make_app: MakeApp, store: Any, sec_settings: Settings
) -> None:
    """The code is the whole grant: its index entry names it, so the bar ends it too."""
    http = no_refresh_app(make_app, sec_settings)
    pending = code_from(authorize(http, README_QUERY))
    refresh_store = RefreshStore(store, pepper=PEPPER, prefix=sec_settings.redis_prefix)
    assert refresh_store.revoke_all(subject=USER) == 0  # no family exists: it bars all the same
    assert_clean_error(redeem(http, pending), 400, "invalid_grant")
    assert families(store) == []
    fresh = redeem(http, code_from(authorize(http, README_QUERY)))  # a sign-in after it is a new grant
    assert fresh.status_code == 200 and "refresh_token" not in fresh.json


def test_the_entry_of_a_code_that_may_not_refresh_lives_as_long_as_the_code(
    make_app: MakeApp, store: Any, sec_settings: Settings, clock: Clock
) -> None:
    """No family will outlive it, so no index keeps its entry longer (a user's index does not grow)."""
    http = no_refresh_app(make_app, sec_settings)
    code = code_from(authorize(http, README_QUERY))
    (index,) = [key for key in store.scan_iter(_type="zset") if b"{s:" in key]
    grant_id = CodeStore(store, pepper=PEPPER, prefix=sec_settings.redis_prefix).family_id(code)
    expiry = clock.now + sec_settings.code_ttl
    assert store.zrange(index, 0, -1, withscores=True) == [(grant_id.encode(), expiry)]
    assert 0 < store.pttl(index) <= sec_settings.code_ttl * 1000
    (code_key,) = store.scan_iter(match="*{c:*}", _type="hash")
    assert not {b"fsub", b"fexp", b"fat", b"fsid"} & set(store.hkeys(code_key))  # nothing to start
    assert redeem(http, code).status_code == 200 and families(store) == []


def test_a_replay_after_log_out_everywhere_is_still_a_replay(
    http: testing.TestClient, store: Any, sec_settings: Settings
) -> None:
    """The used marker answers before the bar: the replay is reported as one (RFC 6749 §4.1.2)."""
    code = code_from(authorize(http, README_QUERY))
    assert redeem(http, code).status_code == 200
    refresh_store = RefreshStore(store, pepper=PEPPER, prefix=sec_settings.redis_prefix)
    assert refresh_store.revoke_all(subject=USER) == 1
    again = redeem(http, code)
    assert_clean_error(again, 400, "invalid_grant")
    assert "already used" in again.json["error_description"]


def test_another_client_cannot_burn_a_barred_code(
    http: testing.TestClient, store: Any, sec_settings: Settings
) -> None:
    """Wrong client is answered before the bar, as before any check that deletes (issue 18)."""
    verifier, challenge = pkce_pair()
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"}
    code = code_from(authorize(http, {**SPA_FLOW, **pkce}))
    RefreshStore(store, pepper=PEPPER, prefix=sec_settings.redis_prefix).revoke_all(subject=USER)
    (code_key,) = store.scan_iter(match="*{c:*}", _type="hash")
    sent = {"code_verifier": verifier, "redirect_uri": SPA_URI}
    assert_clean_error(redeem(http, code, auth=DEMO, **sent), 400, "invalid_grant")
    assert store.exists(code_key)  # untouched by the other client
    assert_clean_error(redeem(http, code, auth=SPA, **sent), 400, "invalid_grant")
    assert not store.exists(code_key) and families(store) == []


def test_one_clients_revocation_of_a_user_bars_no_other_clients_code(
    http: testing.TestClient, store: Any, sec_settings: Settings
) -> None:
    pending = code_from(authorize(http, README_QUERY))
    refresh_store = RefreshStore(store, pepper=PEPPER, prefix=sec_settings.redis_prefix)
    assert refresh_store.revoke_all(subject=USER, client_id="other") == 0
    assert redeem(http, pending).status_code == 200  # an entry names no client: it is not barred


def test_revoking_a_made_up_family_id_bars_nothing(
    http: testing.TestClient, store: Any, sec_settings: Settings
) -> None:
    """RFC 7009 and the admin path revoke what exists; only a logout bars what is yet to start."""
    code = code_from(authorize(http, README_QUERY))
    refresh_store = RefreshStore(store, pepper=PEPPER, prefix=sec_settings.redis_prefix)
    family_id = CodeStore(store, pepper=PEPPER, prefix=sec_settings.redis_prefix).family_id(code)
    assert not refresh_store.revoke(family_id, now=0)
    assert [key for key in store.scan_iter() if key.endswith(b":revoked")] == []
    assert redeem(http, code).status_code == 200


@pytest.mark.parametrize("missing", ["fsub", "fexp", "fat", "fsid"])
def test_a_code_with_part_of_its_family_missing_takes_the_two_trip_path(
    http: testing.TestClient, store: Any, missing: str
) -> None:
    code = code_from(authorize(http, README_QUERY))
    (key,) = store.scan_iter(match="*{c:*}", _type="hash")
    store.hdel(key, missing)
    exchanged = redeem(http, code)
    assert exchanged.status_code == 200, exchanged.text
    assert refresh(http, exchanged.json["refresh_token"]).status_code == 200
    assert all(store.pttl(k) > 0 for k in store.scan_iter())  # every key it wrote has a TTL


def test_a_code_issued_under_another_pepper_starts_nothing(
    http: testing.TestClient, make_app: MakeApp, store: Any
) -> None:
    """keys/pepper replaced between /authorize and the exchange: the record does not open."""
    code = code_from(authorize(http, README_QUERY))
    other = make_app(pepper=Pepper(b"another deployment's pepper 32B!"))
    assert_clean_error(redeem(other, code), 400, "invalid_grant")
    assert families(store) == []  # the family its take started is revoked at once
    assert all(store.pttl(k) > 0 for k in store.scan_iter())


def test_a_confidential_clients_family_is_not_bound_to_a_dpop_key(
    http: testing.TestClient, store: Any, clock: Clock
) -> None:
    """RFC 9449 §5: a confidential client's refresh tokens are bound to its credentials instead."""
    code = code_from(authorize(http, README_QUERY))
    proof = DPoPKey().proof(iat=clock.now)
    params = {"grant_type": "authorization_code", "code": code}
    exchanged = call(http, "/api/v1/tokens", params, headers={"DPoP": proof})
    assert exchanged.status_code == 200 and exchanged.json["token_type"] == "DPoP", exchanged.text
    (family,) = families(store)
    assert store.hget(family, "jkt") is None
    assert refresh(http, exchanged.json["refresh_token"]).status_code == 200  # without a proof


@pytest.mark.parametrize(
    ("field", "value"),
    [("scope", b"read write offline_access"), ("fat", b"1.0"), ("fsid", b"someone-elses-session"),
     ("aud", REPORTS.encode())],
)  # fmt: skip
def test_a_family_made_of_copies_that_differ_from_the_sealed_record_is_refused(
    make_app: MakeApp, sec_settings: Settings, store: Any, field: str, value: bytes
) -> None:
    """Someone who can write to Redis widens the clear copies a code's family would be made of."""
    both = client_like(sec_settings, DEMO[0], secret=DEMO[1], audiences=(API, REPORTS))
    http = make_app(clients=(both,))
    code = code_from(authorize(http, {**README_QUERY, "scope": "read", "resource": API}))
    (key,) = store.scan_iter(match="*{c:*}", _type="hash")
    store.hset(key, field, value)
    assert_clean_error(redeem(http, code), 400, "invalid_grant")
    assert families(store) == []  # the family the take made is revoked at once
    assert all(store.pttl(k) > 0 for k in store.scan_iter())
