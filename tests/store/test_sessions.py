"""Tests for jwtauth.store.sessions: ended sessions and per-user "not before", each with a TTL."""

from __future__ import annotations

import hashlib
from typing import Any

from jwtauth.store.redisclient import in_order
from jwtauth.store.sessions import SessionMarks
from tests.helpers import PEPPER

NOW = 1_700_000_000
TTL = 600


def marks(backend: Any) -> SessionMarks:
    return SessionMarks(backend.client, pepper=PEPPER, prefix=backend.prefix, session_ttl=TTL)


def test_a_session_lives_until_it_is_ended(backend: Any) -> None:
    store = marks(backend)
    assert store.live("alice", "sid-1", NOW)
    store.end("alice", "sid-1")
    assert not store.live("alice", "sid-1", NOW)
    assert store.live("alice", "sid-2", NOW)  # only that one
    assert store.live("bob", "sid-1", NOW)


def test_log_out_everywhere_ends_sessions_up_to_now_only(backend: Any) -> None:
    store = marks(backend)
    store.end_all("alice", now=NOW + 0.5)
    assert not store.live("alice", "sid-1", NOW)
    assert store.live("alice", "sid-2", NOW + 1)  # signed in after
    assert store.live("bob", "sid-3", NOW)


def test_every_mark_expires_with_the_sessions_and_hides_names(backend: Any) -> None:
    store = marks(backend)
    store.end("alice@example.com", "secret-session-id")
    store.end_all("alice@example.com", now=NOW)
    keys = backend.key_names()
    assert len(keys) == 2
    for key in keys:
        assert 0 < backend.client.pttl(key) <= TTL * 1000
    raw = b" ".join(backend.raw_bytes())
    assert b"alice" not in raw and b"secret-session-id" not in raw


def test_a_sessions_grants_are_kept_while_they_may_live_and_trimmed_after(backend: Any) -> None:
    """Codes redeemed long ago do not pile up in a session that signs in silently all day."""
    store = marks(backend)
    for i in range(50):  # codes of a client that may not refresh: each lives a minute
        link = store.linking("alice", "sid-1", f"code{i}", until=NOW + i + 60, now=NOW + i)
        in_order(backend.client, link)
    in_order(backend.client, store.linking("alice", "sid-1", "family", until=NOW + 86_400, now=NOW + 49))
    every = sorted(["family", *(f"code{i}" for i in range(50))])
    assert store.grants("alice", "sid-1", now=NOW + 49) == every
    late = NOW + 200
    in_order(backend.client, store.linking("alice", "sid-1", "code-late", until=late + 60, now=late))
    assert store.grants("alice", "sid-1", now=late) == ["code-late", "family"]
    (key,) = backend.key_names()
    assert backend.client.zcard(key) == 2  # the dead ones are gone, not merely skipped
    assert 0 < backend.client.pttl(key) <= TTL * 1000
    assert store.grants("alice", "sid-2", now=late) == [] and store.grants("bob", "sid-1", now=late) == []
    raw = b" ".join(backend.raw_bytes())
    assert b"alice" not in raw and b"sid-1" not in raw


def test_the_families_a_0_1_0_session_linked_are_still_found(backend: Any) -> None:
    """0.1.0 kept them in a plain set; its sessions' logout must still revoke them."""
    store = marks(backend)
    legacy = f"{store._user('alice')}:fam:{hashlib.sha256(b'sid-1').hexdigest()}"
    backend.client.sadd(legacy, "old-family")
    backend.client.pexpire(legacy, TTL * 1000)
    in_order(backend.client, store.linking("alice", "sid-1", "new-family", until=NOW + 600, now=NOW))
    assert store.grants("alice", "sid-1", now=NOW) == ["new-family", "old-family"]
