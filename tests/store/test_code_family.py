"""A code's take starts the refresh family written ahead at issue, in the same atomic step.

jwtauth.store.codes (the take with `start`) with jwtauth.store.refresh (`ahead_of_code`,
`starting`): the family is the one the two-trip path would start, it is indexed for "log out
everywhere" and bound to the code's used marker, a refused take writes nothing, and a code
issued without it leaves the family to the caller.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest

from jwtauth.store import (
    CodeCheck,
    CodeRecord,
    CodeStore,
    FamilyRecord,
    FamilySpec,
    RefreshStore,
    RotationStatus,
    TakeStatus,
)
from tests.helpers import PEPPER

NOW = 1_700_000_000.0
TTL = 60.0
IDLE, ABSOLUTE = 600.0, 3600.0
API = "https://api.example.com"
OWNER = "client-a"
VERIFIER_S256 = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
RECORD = CodeRecord(
    client_id=OWNER, redirect_uri="https://app.example.com/cb", scope="openid read", subject="alice",
    code_challenge=VERIFIER_S256, code_challenge_method="S256", auth_time=NOW - 5, audience=(API,),
)  # fmt: skip
CHECK = CodeCheck(
    redirect_uris=(RECORD.redirect_uri or "",), unset_redirect_ok=False, one_registered_uri=True, jkt=None,
    require_pkce=True, scopes="openid read write", default_audience=API, resource=None, audiences=(API,),
)  # fmt: skip


# Standalone backends only, not the opt-in Cluster one: there a code's and a family's keys are in
# two slots, so codes take the two-trip path (tests/store/test_codes.py, tests/faults/test_cluster.py).
pytestmark = pytest.mark.parametrize(
    "backend", ["fakeredis", pytest.param("redis", marks=pytest.mark.redis)], indirect=True
)


@pytest.fixture
def stores(backend: Any) -> tuple[CodeStore, RefreshStore]:
    codes = CodeStore(backend.client, pepper=PEPPER, prefix=backend.prefix, access_token_ttl=900)
    return codes, RefreshStore(backend.client, pepper=PEPPER, prefix=backend.prefix)


def issue(
    codes: CodeStore, refresh: RefreshStore, record: CodeRecord = RECORD, bound: float | None = None
) -> str:
    """Issue a code with its family written ahead, as /authorize does."""
    limit = NOW + TTL + ABSOLUTE if bound is None else bound

    def ahead(family_id: str) -> Any:
        return refresh.ahead_of_code(
            family_id,
            subject=record.subject,
            auth_time=record.auth_time,
            sid=record.sid,
            now=NOW,
            bound=limit,
        )

    return codes.issue(record, ttl=TTL, now=NOW, ahead=ahead)


def code_key(backend: Any, code: str) -> str:
    return f"{backend.prefix}{{c:{hashlib.sha256(code.encode()).hexdigest()}}}"


def take(codes: CodeStore, refresh: RefreshStore, code: str, *, at: float = NOW + 1, **changes: Any) -> Any:
    grant_id = codes.family_id(code)
    start = refresh.starting(grant_id, now=at, lifetimes=(IDLE, ABSOLUTE), jkt=changes.pop("jkt", None))
    check = dataclasses.replace(CHECK, **changes)
    bar = refresh.bar_key(grant_id)
    taken = codes.take(code, client_id=OWNER, now=at, proof=VERIFIER_S256, check=check, bar=bar, start=start)
    return taken, start


def test_the_take_starts_the_family_the_two_trip_path_would(stores: tuple[CodeStore, RefreshStore]) -> None:
    codes, refresh = stores
    assert codes.starts_families
    code = issue(codes, refresh)
    result, start = take(codes, refresh, code)
    assert result.status is TakeStatus.OK and result.record == RECORD and result.started
    family_id = start.issued.family_id
    assert family_id == codes.family_id(code) and start.issued.token.startswith(family_id + ".")
    assert refresh.lookup(start.issued.token, now=NOW + 2) == FamilyRecord(
        family_id=family_id, client_id=OWNER, subject="alice", scope="openid read", audience=(API,),
        auth_time=NOW - 5, created=NOW + 1, absolute_expiry=NOW + 1 + ABSOLUTE, idle_expiry=NOW + 1 + IDLE,
        generation=1, sid=None,
    )  # fmt: skip
    rotated = refresh.rotate(start.issued.token, client_id=OWNER, now=NOW + 3, idle_ttl=IDLE)
    assert rotated.status is RotationStatus.OK and rotated.family is not None
    # Bound to the code: a second redemption names it, for the grant to revoke.
    again = codes.take(code, client_id=OWNER, now=NOW + 4, proof=VERIFIER_S256)
    assert (again.status, again.family_id) == (TakeStatus.ALREADY_USED, family_id)
    # Indexed ahead: "log out everywhere" finds it.
    assert refresh.revoke_all(subject="alice") == 1 and refresh.is_revoked(family_id)


def test_its_hash_is_the_one_the_two_trip_path_writes(
    backend: Any, stores: tuple[CodeStore, RefreshStore]
) -> None:
    codes, refresh = stores
    record = dataclasses.replace(RECORD, sid="session-1")
    result, start = take(codes, refresh, issue(codes, refresh, record), at=NOW + 1)
    spec = FamilySpec(
        client_id=OWNER, subject="alice", scope="openid read", audience=(API,), auth_time=NOW - 5,
        now=NOW + 1, absolute_ttl=ABSOLUTE, idle_ttl=IDLE, sid="session-1",
    )  # fmt: skip
    created = refresh.create(spec)
    one, two = (
        backend.client.hgetall(f"{backend.prefix}{{f:{f}}}")
        for f in (start.issued.family_id, created.family_id)
    )
    assert result.started and set(one) == set(two)
    differ = {name for name in one if one[name] != two[name]}
    assert differ <= {b"subject", b"cur", b"audience"}  # sealed to each family, its own secret
    assert json.loads(one[b"audience"]) == json.loads(two[b"audience"]) == [API]  # cjson escapes '/'
    ttls = [
        backend.client.pttl(f"{backend.prefix}{{f:{f}}}") for f in (start.issued.family_id, created.family_id)
    ]
    assert abs(ttls[0] - ttls[1]) < 1000 and ttls[0] > (IDLE - 5) * 1000


def test_a_bar_before_the_take_kills_the_code_and_a_plain_revoke_bars_nothing(
    backend: Any, stores: tuple[CodeStore, RefreshStore]
) -> None:
    codes, refresh = stores
    code = issue(codes, refresh)
    family_id = codes.family_id(code)
    assert not refresh.revoke(family_id, now=NOW)  # RFC 7009 and admin: only what exists
    assert not refresh.is_revoked(family_id)
    assert refresh.revoke_families([family_id], now=NOW, bar=True, reason="logout") == []
    assert refresh.is_revoked(family_id)  # the bar, though no family was revoked
    result, start = take(codes, refresh, code)
    assert result.status is TakeStatus.UNKNOWN and not backend.client.exists(start.key)
    assert not backend.client.exists(code_key(backend, code))  # the code is gone with it


def test_a_bar_kills_a_code_that_starts_no_family_and_only_that_code(
    backend: Any, stores: tuple[CodeStore, RefreshStore]
) -> None:
    """A client that may not refresh: the take declares the bar without a family to start."""
    codes, refresh = stores

    def grant_only(grant_id: str) -> Any:
        return refresh.ahead_of_grant(grant_id, subject=RECORD.subject, now=NOW, until=NOW + TTL)

    barred, spared = (codes.issue(RECORD, ttl=TTL, now=NOW, ahead=grant_only) for _ in range(2))
    assert refresh.revoke_families([codes.family_id(barred)], now=NOW, bar=True, reason="logout") == []

    def take_bare(code: str) -> Any:
        bar = refresh.bar_key(codes.family_id(code))
        return codes.take(code, client_id=OWNER, now=NOW + 1, proof=VERIFIER_S256, check=CHECK, bar=bar)

    assert take_bare(barred).status is TakeStatus.UNKNOWN
    assert not backend.client.exists(code_key(backend, barred))
    result = take_bare(spared)
    assert result.status is TakeStatus.OK and result.record == RECORD and not result.started


def test_a_refused_take_writes_nothing_and_starts_nothing(
    backend: Any, stores: tuple[CodeStore, RefreshStore]
) -> None:
    codes, refresh = stores
    code = issue(codes, refresh)
    before = backend.raw_bytes()
    result, start = take(codes, refresh, code, redirect_uris=("https://evil.example/cb",))
    assert result.status is TakeStatus.REFUSED and not result.started
    assert backend.raw_bytes() == before
    assert not backend.client.exists(start.key)
    assert take(codes, refresh, code)[0].started  # still redeemable, and it starts its family then


def test_a_code_issued_without_the_family_ahead_leaves_it_to_the_caller(
    backend: Any, stores: tuple[CodeStore, RefreshStore]
) -> None:
    codes, refresh = stores
    code = codes.issue(RECORD, ttl=TTL, now=NOW)  # an earlier release's code, or a client without refresh
    result, start = take(codes, refresh, code)
    assert result.status is TakeStatus.OK and result.record == RECORD and not result.started
    assert not backend.client.exists(start.key)


def test_the_family_never_outlives_its_index_entry(stores: tuple[CodeStore, RefreshStore]) -> None:
    """The client's absolute lifetime grew between issue and exchange: capped at the entry's score."""
    codes, refresh = stores
    bound = NOW + 100.0
    code = issue(codes, refresh, bound=bound)
    result, start = take(codes, refresh, code, at=NOW + 30)
    family = refresh.lookup(start.issued.token, now=NOW + 31)
    assert result.started and family is not None
    assert family.absolute_expiry == bound and family.idle_expiry == bound


def test_session_dpop_key_and_an_unusual_audience_are_kept(stores: tuple[CodeStore, RefreshStore]) -> None:
    codes, refresh = stores
    audience = 'https://api.example.com/a"b\\c/é'
    record = dataclasses.replace(RECORD, sid="session-1", audience=(audience,))
    code = issue(codes, refresh, record)
    result, start = take(
        codes, refresh, code, jkt="thumbprint-1", default_audience=audience, audiences=(audience,)
    )
    family = refresh.lookup(start.issued.token, now=NOW + 2)
    assert result.started and family is not None
    assert (family.sid, family.audience) == ("session-1", (audience,))
    # Bound to the DPoP key of the exchange (RFC 9449 §5): without it, the family does not rotate.
    wrong = refresh.rotate(start.issued.token, client_id=OWNER, now=NOW + 3, idle_ttl=IDLE)
    assert wrong.status is RotationStatus.WRONG_KEY
    right = refresh.rotate(
        start.issued.token, client_id=OWNER, now=NOW + 3, idle_ttl=IDLE, jkt="thumbprint-1"
    )
    assert right.status is RotationStatus.OK


def test_what_is_written_ahead_names_no_user(backend: Any, stores: tuple[CodeStore, RefreshStore]) -> None:
    codes, refresh = stores
    issue(codes, refresh, dataclasses.replace(RECORD, sid="session-1"))
    stored = b" ".join(backend.raw_bytes())
    assert b"alice" not in stored and hashlib.sha256(b"alice").hexdigest().encode() not in stored
