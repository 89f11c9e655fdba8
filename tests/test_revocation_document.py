"""Tests of the revocation document: GET /api/v1/revocations and Verifier(revocations=True)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jwt
import pytest
from falcon import testing

from jwtauth.config.settings import Settings
from jwtauth.oidc.pairwise import subjects_of
from jwtauth.resources import paths
from jwtauth.resources.revocations import document_claims
from jwtauth.store.revocations import RevocationIndex, Snapshot
from jwtauth.verify import InvalidToken
from jwtauth.verify.revocations import REVOCATIONS_TYP, subject_digest
from tests.helpers import (
    ISSUER,
    Clock,
    MakeApp,
    claims_of,
    client_like,
    login,
    refresh,
    revoke,
    tokens_of,
    with_clients,
)
from tests.revocationkit import subscribed

MAX_AGE = 30  # the default keys.revocations_max_age


@pytest.fixture
def http(make_app: MakeApp) -> testing.TestClient:
    return make_app()


def test_metadata_names_the_document_and_it_is_a_signed_jwt_of_its_own_type(http: testing.TestClient) -> None:
    meta = http.simulate_get(paths.METADATA[0]).json
    assert meta["jwtauth_revocations_uri"] == ISSUER + paths.REVOCATIONS
    answer = http.simulate_get(paths.REVOCATIONS)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/jwt"
    assert answer.headers["Cache-Control"] == f"public, max-age={MAX_AGE}"
    assert jwt.get_unverified_header(answer.text)["typ"] == REVOCATIONS_TYP
    claims = jwt.decode(answer.text, options={"verify_signature": False})
    assert (
        claims["iss"] == ISSUER and claims["revoked_families"] == [] and claims["subjects_not_before"] == {}
    )
    again = http.simulate_get(paths.REVOCATIONS, headers={"If-None-Match": answer.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""


def test_a_revoked_familys_access_token_is_refused_within_the_max_age(
    http: testing.TestClient, clock: Clock
) -> None:
    verifier, fetch = subscribed(http, clock)
    access, refresh_token = tokens_of(login(http))
    other, _ = tokens_of(login(http))  # the same user's other family
    assert verifier.verify(access)["sub"]
    assert revoke(http, refresh_token).status_code == 200
    verifier.verify(access)  # the cached document is still fresh: this is the delay
    clock.now += MAX_AGE
    with pytest.raises(InvalidToken, match="revoked"):
        verifier.verify(access)
    assert verifier.verify(other)["sub"] == "testuser@example.com"  # another family is untouched
    assert fetch.calls.count(paths.REVOCATIONS) == 2


def test_reuse_detection_is_published_too(http: testing.TestClient, clock: Clock) -> None:
    verifier, _ = subscribed(http, clock)
    access, first = tokens_of(login(http))
    tokens_of(refresh(http, first))
    clock.now += 10  # past the grace: presenting the rotated-out token again is reuse
    assert refresh(http, first).status_code == 400
    with pytest.raises(InvalidToken, match="revoked"):
        verifier.verify(access)


def test_a_subjects_not_before_refuses_older_tokens_only(
    make_app: MakeApp, store: Any, settings: Any, clock: Clock
) -> None:
    http = make_app()
    verifier, _ = subscribed(http, clock)
    before, _ = tokens_of(login(http))
    index = RevocationIndex(
        store, issuer=ISSUER, prefix=settings.redis_prefix, horizon=settings.token_horizon
    )
    index.record_subject("testuser@example.com", not_before=int(clock.now) + 1, now=clock.now)
    clock.now += 1
    after, _ = tokens_of(login(http))
    with pytest.raises(InvalidToken, match="revoked"):
        verifier.verify(before)
    assert verifier.verify(after)["sub"] == "testuser@example.com"


def test_verifying_costs_no_fetch_per_request(http: testing.TestClient, clock: Clock) -> None:
    verifier, fetch = subscribed(http, clock)
    access, _ = tokens_of(login(http))
    for _ in range(50):
        verifier.verify(access)
        clock.now += 0.5
    assert fetch.calls.count(paths.REVOCATIONS) == 1
    clock.now += MAX_AGE
    verifier.verify(access)  # revalidated with If-None-Match: a 304 keeps the document
    assert fetch.calls.count(paths.REVOCATIONS) == 2


def _snapshot(families: int, subjects: int) -> Snapshot:
    snap = Snapshot()
    for n in range(families):
        snap.families[f"fam-{n}"] = 1000.0 + n
        snap.family_subjects[f"fam-{n}"] = (f"sub-of-fam-{n}",)
    for n in range(subjects):
        snap.subjects[f"sub-{n}"] = 2000.0 + n
    return snap


def test_families_past_the_cap_fold_into_their_subjects_not_before() -> None:
    claims = document_claims(ISSUER, _snapshot(5, 0), now=3000.0, max_age=30, cap=10)
    assert len(claims["revoked_families"]) == 5 and "not_before" not in claims
    folded = document_claims(ISSUER, _snapshot(5, 0), now=3000.0, max_age=30, cap=3)
    assert folded["revoked_families"] == ["fam-2", "fam-3", "fam-4"]  # the newest kept
    # The two oldest become their subjects' not-before, after the second they were revoked in.
    assert folded["subjects_not_before"] == {"sub-of-fam-1": 1002, "sub-of-fam-0": 1001}


def test_subjects_past_the_cap_fold_into_one_global_not_before() -> None:
    claims = document_claims(ISSUER, _snapshot(0, 5), now=3000.0, max_age=30, cap=2)
    assert set(claims["subjects_not_before"]) == {"sub-4", "sub-3"}
    assert claims["not_before"] == 2002  # the newest subject dropped: every older token is refused
    assert claims["iat"] == 3000 - 3000 % 30 and claims["exp"] == claims["iat"] + 150


def test_the_subject_digest_binds_the_issuer() -> None:
    assert subject_digest(ISSUER, "alice") != subject_digest("https://other.example", "alice")


def test_log_out_everywhere_reaches_a_pairwise_clients_tokens(
    make_app: MakeApp, store: Any, settings: Settings, clock: Clock
) -> None:
    pairwise = client_like(
        settings,
        "pa",
        secret="pasecret",
        redirect_uris=("https://a.example.com/cb",),
        subject_type="pairwise",
    )
    chosen = dataclasses.replace(with_clients(settings, pairwise), pairwise_salt="0123456789abcdef" * 2)
    http = make_app(settings=chosen)
    verifier, _ = subscribed(http, clock)
    access, _ = tokens_of(login(http, auth=("pa", "pasecret")))
    assert claims_of(access)["sub"] != "testuser@example.com"  # the client's own pairwise sub
    index = RevocationIndex(
        store, issuer=ISSUER, prefix=chosen.redis_prefix, horizon=chosen.token_horizon,
        aliases=subjects_of(chosen).access_subjects,
    )  # fmt: skip
    index.record_subject("testuser@example.com", not_before=int(clock.now) + 1, now=clock.now)
    with pytest.raises(InvalidToken, match="revoked"):
        verifier.verify(access)
