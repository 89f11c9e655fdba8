"""Tests for jwtauth.store.revocations: bucketed, TTL'd, read back within one horizon."""

from __future__ import annotations

from typing import Any

from jwtauth.store.revocations import RevocationIndex
from jwtauth.verify.revocations import subject_digest

NOW = 1_700_000_000.0
HORIZON = 960.0
ISSUER = "https://auth.example.com"


def index(backend: Any) -> RevocationIndex:
    return RevocationIndex(backend.client, issuer=ISSUER, prefix=backend.prefix, horizon=HORIZON)


def test_families_and_subjects_read_back_until_a_horizon_passes(backend: Any) -> None:
    revocations = index(backend)
    revocations.record_family("fam-old", "alice", now=NOW)
    revocations.record_family("fam-new", "bob", now=NOW + 500)
    revocations.record_subject("carol", not_before=NOW + 501, now=NOW + 500)
    seen = revocations.snapshot(now=NOW + 600)
    assert seen.families == {"fam-old": NOW, "fam-new": NOW + 500}
    assert seen.family_subjects["fam-new"] == (subject_digest(ISSUER, "bob"),)
    assert seen.subjects == {subject_digest(ISSUER, "carol"): NOW + 501}
    later = revocations.snapshot(now=NOW + HORIZON + 1)  # fam-old's tokens are all expired
    assert set(later.families) == {"fam-new"}


def test_a_later_not_before_wins_and_an_earlier_one_does_not_undo_it(backend: Any) -> None:
    revocations = index(backend)
    revocations.record_subject("alice", not_before=NOW + 10, now=NOW)
    revocations.record_subject("alice", not_before=NOW + 5, now=NOW + 1)
    assert revocations.snapshot(now=NOW + 2).subjects == {subject_digest(ISSUER, "alice"): NOW + 10}


def test_every_key_expires_one_horizon_after_its_bucket_and_hides_names(backend: Any) -> None:
    revocations = index(backend)
    revocations.record_family("fam-1", "alice@example.com", now=NOW)
    revocations.record_subject("alice@example.com", not_before=NOW, now=NOW + 200)
    keys = backend.key_names()
    assert 1 <= len(keys) <= 3
    for key in keys:
        assert 0 < backend.client.pttl(key) <= (HORIZON + HORIZON / 12) * 1000
        assert b"{rev:" in key
    assert b"alice" not in b" ".join(backend.raw_bytes())
