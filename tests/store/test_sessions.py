"""Tests for jwtauth.store.sessions: ended sessions and per-user "not before", each with a TTL."""

from __future__ import annotations

from typing import Any

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
