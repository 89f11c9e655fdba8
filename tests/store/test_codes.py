"""Tests for jwtauth.store.codes: single use, client binding, second-redemption detection."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest

from jwtauth.store import CodeCheck, CodeRecord, CodeStore, FamilySpec, RefreshStore, TakeResult, TakeStatus
from tests.helpers import PEPPER, race

NOW = 1_700_000_000.0
TTL = 60.0
ACCESS_TTL = 900.0
OWNER = "client-a"
OTHER = "client-b"
RECORD = CodeRecord(
    client_id=OWNER,
    redirect_uri="https://app.example.com/cb",
    scope="openid read",
    subject="alice",
    code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    code_challenge_method="S256",
    auth_time=NOW - 5,
    audience=("https://api.example.com",),
)


def make_store(backend: Any) -> CodeStore:
    return CodeStore(backend.client, pepper=PEPPER, prefix=backend.prefix, access_token_ttl=ACCESS_TTL)


def bind(backend: Any, store: CodeStore, code: str) -> tuple[str, bool]:
    """Start a family bound to `code` as the code grant does; return its id and the bind's reply."""
    refresh = RefreshStore(backend.client, pepper=PEPPER, prefix=backend.prefix)
    spec = FamilySpec(
        client_id=OWNER, subject=RECORD.subject, scope=RECORD.scope, audience=RECORD.audience,
        auth_time=RECORD.auth_time, now=NOW, absolute_ttl=3600.0, idle_ttl=600.0,
    )  # fmt: skip
    issued = refresh.create(spec, then=lambda family_id: [store.binding(code, family_id)])
    (bound,) = issued.after
    return issued.family_id, bool(bound)


def code_key(backend: Any, code: str) -> str:
    return f"{backend.prefix}{{c:{hashlib.sha256(code.encode()).hexdigest()}}}"


def test_take_returns_the_record_once(backend: Any) -> None:
    store = make_store(backend)
    code = store.issue(RECORD, ttl=TTL, now=NOW)
    assert store.take(code, client_id=OWNER, now=NOW + 1) == TakeResult(TakeStatus.OK, RECORD)
    assert store.take(code, client_id=OWNER, now=NOW + 2) == TakeResult(TakeStatus.ALREADY_USED)


def test_record_without_optional_fields_round_trips(backend: Any) -> None:
    store = make_store(backend)
    bare = CodeRecord(OWNER, None, "read", "bob", None, None, NOW)
    code = store.issue(bare, ttl=TTL, now=NOW)
    assert store.take(code, client_id=OWNER, now=NOW).record == bare


def test_already_used_returns_the_bound_family(backend: Any) -> None:
    store = make_store(backend)
    code = store.issue(RECORD, ttl=TTL, now=NOW)
    assert store.take(code, client_id=OWNER, now=NOW + 1).status is TakeStatus.OK
    family_id, bound = bind(backend, store, code)
    assert bound
    second = store.take(code, client_id=OWNER, now=NOW + 2)
    assert second == TakeResult(TakeStatus.ALREADY_USED, family_id=family_id)


def test_bind_after_a_replay_tells_the_first_caller_to_revoke(backend: Any) -> None:
    store = make_store(backend)
    code = store.issue(RECORD, ttl=TTL, now=NOW)
    store.take(code, client_id=OWNER, now=NOW + 1)
    # The replay arrives before the first caller has bound its family.
    assert store.take(code, client_id=OWNER, now=NOW + 1).family_id is None
    family_id, bound = bind(backend, store, code)
    assert not bound
    # The family is still recorded for any later redemption.
    assert store.take(code, client_id=OWNER, now=NOW + 2).family_id == family_id


def test_bind_without_a_take_is_refused(backend: Any) -> None:
    store = make_store(backend)
    code = store.issue(RECORD, ttl=TTL, now=NOW)
    assert bind(backend, store, code)[1] is False
    assert store.take(code, client_id=OWNER, now=NOW).status is TakeStatus.OK
    assert store.take(code, client_id=OWNER, now=NOW).family_id is None  # nothing was bound


def test_concurrent_takes_yield_exactly_one_record(backend: Any) -> None:
    store = make_store(backend)
    code = store.issue(RECORD, ttl=TTL, now=NOW)
    results: list[TakeResult] = race(lambda: store.take(code, client_id=OWNER, now=NOW + 1))
    assert sorted(r.status.value for r in results) == ["already_used"] * 19 + ["ok"]
    assert [r.record for r in results if r.record is not None] == [RECORD]


def test_another_client_cannot_take_or_burn_the_code(backend: Any) -> None:
    store = make_store(backend)
    code = store.issue(RECORD, ttl=TTL, now=NOW)
    assert store.take(code, client_id=OTHER, now=NOW + 1) == TakeResult(TakeStatus.WRONG_CLIENT)
    assert store.take(code, client_id=OWNER, now=NOW + 2).status is TakeStatus.OK
    bind(backend, store, code)
    # Nor can it learn or trigger revocation of the owner's family with a used code.
    assert store.take(code, client_id=OTHER, now=NOW + 3) == TakeResult(TakeStatus.WRONG_CLIENT)


@pytest.mark.parametrize("code", ["", "short", "A" * 42 + "!", "A" * 44])
def test_malformed_codes_are_unknown(backend: Any, code: str) -> None:
    assert make_store(backend).take(code, client_id=OWNER, now=NOW).status is TakeStatus.UNKNOWN


def test_unknown_and_expired_codes(backend: Any) -> None:
    store = make_store(backend)
    code = store.issue(RECORD, ttl=TTL, now=NOW)
    never_issued = "A" * 43
    assert store.take(never_issued, client_id=OWNER, now=NOW).status is TakeStatus.UNKNOWN
    assert store.take(code, client_id=OWNER, now=NOW + TTL).status is TakeStatus.UNKNOWN
    assert store.take(code, client_id=OWNER, now=NOW + 1).status is TakeStatus.UNKNOWN
    assert backend.key_names() == []


def test_keys_have_ttls_and_the_used_marker_outlives_the_access_token(backend: Any) -> None:
    store = make_store(backend)
    waiting = store.issue(RECORD, ttl=TTL, now=NOW)
    used = store.issue(RECORD, ttl=TTL, now=NOW)
    store.take(used, client_id=OWNER, now=NOW)
    assert len(backend.key_names()) == 2
    assert 0 < backend.client.pttl(code_key(backend, waiting)) <= TTL * 1000
    marker_ms = backend.client.pttl(code_key(backend, used) + ":used")
    assert (TTL + ACCESS_TTL - 5) * 1000 < marker_ms <= (TTL + ACCESS_TTL) * 1000


def test_redis_never_holds_a_code(backend: Any) -> None:
    store = make_store(backend)
    codes = [store.issue(RECORD, ttl=TTL, now=NOW) for _ in range(4)]
    store.take(codes[0], client_id=OWNER, now=NOW)
    bind(backend, store, codes[0])
    stored = backend.raw_bytes()
    assert len(stored) >= 8
    assert [(b, c) for b in stored for c in codes if c.encode() in b] == []


def check(**changes: Any) -> CodeCheck:
    """Return the CodeCheck of a request that fits RECORD, with `changes`."""
    fitting = CodeCheck(
        redirect_uris=(RECORD.redirect_uri or "",), unset_redirect_ok=False, one_registered_uri=False,
        jkt=None, require_pkce=False, scopes="openid read write", default_audience="https://api.example.com",
        resource=None, audiences=("https://api.example.com",),
    )  # fmt: skip
    return dataclasses.replace(fitting, **changes)


def test_a_checked_take_refuses_a_record_that_does_not_fit_and_takes_nothing(backend: Any) -> None:
    store = make_store(backend)
    code = store.issue(dataclasses.replace(RECORD, dpop_jkt="the-key"), ttl=TTL, now=NOW)
    proof = RECORD.code_challenge
    misfits = [
        (proof, check(redirect_uris=("https://app.example.com/other",))),
        (proof, check(jkt=None)),
        (proof, check(jkt="another-key")),
        (proof, check(jkt="the-key", scopes="read")),
        (proof, check(jkt="the-key", audiences=("https://reports.example.com",))),
        (proof, check(jkt="the-key", resource="https://reports.example.com")),
        ("x" * 43, check(jkt="the-key")),
        (None, check(jkt="the-key")),
    ]
    for presented, misfit in misfits:
        refused = store.take(code, client_id=OWNER, now=NOW + 1, proof=presented, check=misfit)
        assert refused.status is TakeStatus.REFUSED and refused.record is not None, misfit
    # Omitted redirect_uri with PKCE fits (the verifier proves the flow).
    fitting = check(jkt="the-key", redirect_uris=None)
    assert store.take(code, client_id=OWNER, now=NOW + 2, proof=proof, check=fitting).status is TakeStatus.OK


def test_a_code_without_the_checked_fields_comes_back_unchecked(backend: Any) -> None:
    store = make_store(backend)
    code = store.issue(RECORD, ttl=TTL, now=NOW)
    backend.client.hdel(code_key(backend, code), "scope")
    unchecked = store.take(code, client_id=OWNER, now=NOW + 1, check=check(scopes=""))
    assert unchecked == TakeResult(TakeStatus.UNCHECKED, RECORD)
    assert store.take(code, client_id=OWNER, now=NOW + 2).status is TakeStatus.OK
