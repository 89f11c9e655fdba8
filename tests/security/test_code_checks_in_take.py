"""The code exchange checks the code's record inside its one atomic take (issue 20).

Every check the take script makes refuses without changing anything in the store, so the code
stays redeemable: proven here by a snapshot of the store before and after each refused attempt,
and by the redemption that follows. Codes issued before the script could check them (a rolling
deploy) are checked in Python first, as before. RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 8707 §2.2.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from falcon import testing

from jwtauth.config.settings import Settings
from jwtauth.store import CodeRecord, CodeStore
from tests.helpers import (
    DEMO,
    MULTI,
    MULTI_URIS,
    PEPPER,
    Clock,
    MakeApp,
    assert_clean_error,
    pkce_pair,
    redis_trips,
    token,
)

README_URI = "https://www.example.com"
Snapshot = Callable[[], dict[bytes, Any]]


@pytest.fixture
def codes(store: Any, sec_settings: Settings) -> CodeStore:
    return CodeStore(store, pepper=PEPPER, prefix=sec_settings.redis_prefix, access_token_ttl=960)


def issue(codes: CodeStore, clock: Clock, client_id: str = DEMO[0], **fields: Any) -> str:
    """Issue a code as the authorize page would, with `fields` of the record changed."""
    record = CodeRecord(
        client_id=client_id, redirect_uri=README_URI, scope="read", subject="testuser@example.com",
        code_challenge=None, code_challenge_method=None, auth_time=clock.now,
        audience=("https://api.example.com",),
    )  # fmt: skip
    return codes.issue(dataclasses.replace(record, **fields), ttl=60, now=clock.now)


def redeem(
    http: testing.TestClient, code: str, auth: tuple[str, str] = DEMO, **params: str
) -> testing.Result:
    return token(http, {"grant_type": "authorization_code", "code": code, **params}, auth=auth)


def refused_untouched(
    http: testing.TestClient, state: Snapshot, code: str, error: str, **params: Any
) -> None:
    """Assert that this attempt is refused with `error` and changes nothing in the store."""
    before = state()
    assert_clean_error(redeem(http, code, **params), 400, error)
    assert state() == before


def test_a_redirect_uri_that_differs_is_refused_and_its_slash_form_fits(
    http: testing.TestClient, codes: CodeStore, clock: Clock, state: Snapshot
) -> None:
    code = issue(codes, clock)
    refused_untouched(http, state, code, "invalid_grant", redirect_uri="https://www.example.com.evil")
    refused_untouched(http, state, code, "invalid_grant", redirect_uri="https://www.example.com/x")
    # RFC 3986 §6.2.3: an empty http(s) path and `/` are the same URI.
    assert redeem(http, code, redirect_uri=README_URI + "/").status_code == 200


def test_a_slash_form_stored_matches_the_bare_form_sent(
    http: testing.TestClient, codes: CodeStore, clock: Clock, state: Snapshot
) -> None:
    code = issue(codes, clock, redirect_uri=README_URI + "/")
    refused_untouched(http, state, code, "invalid_grant", redirect_uri=README_URI + "//")
    assert redeem(http, code, redirect_uri=README_URI).status_code == 200


def test_an_omitted_redirect_uri_that_was_required_is_refused(
    http: testing.TestClient, codes: CodeStore, clock: Clock, state: Snapshot
) -> None:
    code = issue(codes, clock, client_id=MULTI[0], redirect_uri=MULTI_URIS[1])
    refused_untouched(http, state, code, "invalid_grant", auth=MULTI)
    refused_untouched(http, state, code, "invalid_grant", auth=MULTI, redirect_uri=MULTI_URIS[0])
    assert redeem(http, code, auth=MULTI, redirect_uri=MULTI_URIS[1]).status_code == 200


def test_a_redirect_uri_sent_for_a_code_without_one_must_be_the_only_registered_one(
    http: testing.TestClient, codes: CodeStore, clock: Clock, state: Snapshot
) -> None:
    many = issue(codes, clock, client_id=MULTI[0], redirect_uri=None)
    refused_untouched(http, state, many, "invalid_grant", auth=MULTI, redirect_uri=MULTI_URIS[0])
    assert redeem(http, many, auth=MULTI).status_code == 200
    one = issue(codes, clock, redirect_uri=None)
    refused_untouched(http, state, one, "invalid_grant", redirect_uri="https://elsewhere.example")
    assert redeem(http, one, redirect_uri=README_URI).status_code == 200


def test_a_wrong_missing_or_downgrading_verifier_is_refused(
    http: testing.TestClient, codes: CodeStore, clock: Clock, state: Snapshot
) -> None:
    verifier, challenge = pkce_pair()
    code = issue(codes, clock, code_challenge=challenge, code_challenge_method="S256")
    refused_untouched(http, state, code, "invalid_grant")
    refused_untouched(http, state, code, "invalid_grant", code_verifier=pkce_pair()[0])
    assert redeem(http, code, code_verifier=verifier).status_code == 200
    plain = issue(codes, clock)
    refused_untouched(http, state, plain, "invalid_grant", code_verifier=verifier)  # RFC 9700 §2.1.1
    assert redeem(http, plain).status_code == 200


def test_a_client_that_must_use_pkce_cannot_redeem_a_code_without_challenge(
    make_app: MakeApp, sec_settings: Settings, codes: CodeStore, clock: Clock, state: Snapshot
) -> None:
    demo = sec_settings.clients[0]
    strict = make_app(clients=(dataclasses.replace(demo, require_pkce=True),))
    code = issue(codes, clock)
    refused_untouched(strict, state, code, "invalid_grant")
    assert redeem(make_app(), code).status_code == 200  # not burnt: the old rule redeems it


def test_a_scope_wider_than_the_clients_is_refused(
    make_app: MakeApp, sec_settings: Settings, codes: CodeStore, clock: Clock, state: Snapshot
) -> None:
    demo = sec_settings.clients[0]
    narrowed = make_app(clients=(dataclasses.replace(demo, scopes=frozenset({"read"})),))
    code = issue(codes, clock, scope="read write")
    refused_untouched(narrowed, state, code, "invalid_grant")
    assert redeem(make_app(), code).json["scope"] == "read write"


def test_an_audience_the_client_may_not_address_is_refused(
    make_app: MakeApp, sec_settings: Settings, codes: CodeStore, clock: Clock, state: Snapshot
) -> None:
    demo = sec_settings.clients[0]
    narrowed = make_app(clients=(dataclasses.replace(demo, audiences=("https://api.example.com",)),))
    code = issue(codes, clock, audience=("https://reports.example.com",))
    refused_untouched(narrowed, state, code, "invalid_grant")
    refused_untouched(make_app(), state, code, "invalid_target", resource="https://api.example.com")
    assert redeem(make_app(), code, resource="https://reports.example.com").status_code == 200


def test_a_code_without_audience_takes_the_clients_first_and_resource_must_repeat_it(
    http: testing.TestClient, codes: CodeStore, clock: Clock, state: Snapshot
) -> None:
    code = issue(codes, clock, audience=())
    refused_untouched(http, state, code, "invalid_target", resource="https://reports.example.com")
    assert redeem(http, code, resource="https://api.example.com").status_code == 200


def test_a_code_for_several_audiences_is_never_taken(
    http: testing.TestClient, codes: CodeStore, clock: Clock, state: Snapshot
) -> None:
    code = issue(codes, clock, audience=("https://api.example.com", "https://reports.example.com"))
    refused_untouched(http, state, code, "invalid_grant")
    refused_untouched(http, state, code, "invalid_grant", resource="https://api.example.com")


def test_a_code_issued_before_the_checked_fields_is_checked_then_taken(
    http: testing.TestClient,
    codes: CodeStore,
    clock: Clock,
    state: Snapshot,
    store: Any,
    sec_settings: Settings,
) -> None:
    verifier, challenge = pkce_pair()
    code = issue(codes, clock, code_challenge=challenge, code_challenge_method="S256")
    digest = hashlib.sha256(code.encode()).hexdigest()
    # What the previous release wrote: no redir, jkt, scope, aud or naud fields.
    store.hdel(f"{sec_settings.redis_prefix}{{c:{digest}}}", "redir", "jkt", "scope", "aud", "naud")
    refused_untouched(http, state, code, "invalid_grant", code_verifier=pkce_pair()[0])
    refused_untouched(http, state, code, "invalid_grant", redirect_uri="https://evil.example")
    assert redeem(http, code, code_verifier=verifier).status_code == 200
    assert_clean_error(redeem(http, code, code_verifier=verifier), 400, "invalid_grant")


def test_an_exchange_of_a_code_without_its_family_ahead_is_two_round_trips(
    http: testing.TestClient, codes: CodeStore, clock: Clock, store: Any
) -> None:
    assert redeem(http, issue(codes, clock)).status_code == 200  # the scripts are loaded now
    with redis_trips(store) as trips:
        assert redeem(http, issue(codes, clock)).status_code == 200
    assert trips[1:] == ["EVALSHA", "pipeline"]  # after the test's own issue: the take, then the family
