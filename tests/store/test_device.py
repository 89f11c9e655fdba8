"""Tests for jwtauth.store.device on fakeredis and a real Redis: one approval, one redemption."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from jwtauth.oauth.device import new_user_code
from jwtauth.store.device import DeviceStore, IssuedDevice
from tests.helpers import PEPPER, race

NOW = 1_800_000_000.0
TTL, INTERVAL, STEP = 600.0, 5, 5
OWNER, OTHER = "tv", "other"


def make_store(backend: Any) -> DeviceStore:
    return DeviceStore(backend.client, pepper=PEPPER, prefix=backend.prefix, redeemed_ttl=960)


def issue(store: DeviceStore, codes: Iterator[str] | None = None) -> IssuedDevice:
    draw = (lambda: next(codes)) if codes is not None else new_user_code
    return store.issue(
        client_id=OWNER, scope=("read", "write"), audience="https://api.example.com",
        now=NOW, ttl=TTL, interval=INTERVAL, new_user_code=draw,
    )  # fmt: skip


def approved(backend: Any) -> tuple[DeviceStore, IssuedDevice]:
    store = make_store(backend)
    issued = issue(store)
    found = store.find(issued.user_code, now=NOW + 1)
    assert found is not None
    assert store.approve(found.ref, subject="alice", auth_time=NOW + 2, now=NOW + 2) == "ok"
    return store, issued


def test_find_shows_the_request_and_fixed_scope(backend: Any) -> None:
    store = make_store(backend)
    issued = issue(store, iter(["BBBBBBBB"]))
    found = store.find(issued.user_code, now=NOW + 1)
    assert found is not None
    assert (found.client_id, found.scope, found.audience) == (
        OWNER,
        ("read", "write"),
        "https://api.example.com",
    )
    assert found.ref == hashlib.sha256(issued.device_code.encode()).hexdigest()
    assert store.find("CCCCCCCC", now=NOW) is None
    assert store.find(issued.user_code, now=NOW + TTL) is None  # expired


def test_a_taken_user_code_is_drawn_again(backend: Any) -> None:
    store = make_store(backend)
    first = issue(store, iter(["BBBBBBBB"]))
    second = issue(store, iter(["BBBBBBBB", "CCCCCCCC"]))
    assert (first.user_code, second.user_code) == ("BBBBBBBB", "CCCCCCCC")
    found = store.find("BBBBBBBB", now=NOW)
    assert found is not None and found.ref == hashlib.sha256(first.device_code.encode()).hexdigest()


def test_poll_pending_then_slow_down_from_the_last_poll(backend: Any) -> None:
    store = make_store(backend)
    device_code = issue(store).device_code
    poll = store.poll
    assert poll(device_code, client_id=OWNER, now=NOW + 5, step=STEP).status == "pending"
    fast = poll(device_code, client_id=OWNER, now=NOW + 7, step=STEP)
    assert (fast.status, fast.interval) == ("slow_down", 10)
    # The interval now counts from the too-fast poll (t+7) and is 10 s for good.
    assert poll(device_code, client_id=OWNER, now=NOW + 16, step=STEP).status == "slow_down"
    assert poll(device_code, client_id=OWNER, now=NOW + 40, step=STEP).status == "pending"
    assert poll(device_code, client_id=OWNER, now=NOW + 49, step=STEP).interval == 20


def test_another_clients_poll_changes_nothing(backend: Any) -> None:
    store, issued = approved(backend)
    assert store.poll(issued.device_code, client_id=OTHER, now=NOW + 5, step=STEP).status == "wrong_client"
    ok = store.poll(issued.device_code, client_id=OWNER, now=NOW + 5, step=STEP)
    assert (ok.status, ok.subject, ok.scope) == ("ok", "alice", ("read", "write"))


def test_approval_happens_once_and_deny_after_it_is_void(backend: Any) -> None:
    store, issued = approved(backend)
    ref = hashlib.sha256(issued.device_code.encode()).hexdigest()
    assert store.approve(ref, subject="mallory", auth_time=NOW, now=NOW + 3) == "approved"
    assert store.deny(ref, now=NOW + 3) == "approved"
    assert store.find(issued.user_code, now=NOW + 3) is None  # decided: no longer waiting
    assert store.poll(issued.device_code, client_id=OWNER, now=NOW + 5, step=STEP).subject == "alice"


def test_deny_ends_the_request(backend: Any) -> None:
    store = make_store(backend)
    issued = issue(store)
    found = store.find(issued.user_code, now=NOW)
    assert found is not None and store.deny(found.ref, now=NOW + 1) == "ok"
    assert store.approve(found.ref, subject="alice", auth_time=NOW, now=NOW + 2) == "denied"
    assert store.poll(issued.device_code, client_id=OWNER, now=NOW + 5, step=STEP).status == "denied"


def test_expired_requests_say_so_and_cannot_be_approved(backend: Any) -> None:
    store = make_store(backend)
    issued = issue(store)
    ref = hashlib.sha256(issued.device_code.encode()).hexdigest()
    assert store.approve(ref, subject="alice", auth_time=NOW, now=NOW + TTL) == "expired"
    assert store.poll(issued.device_code, client_id=OWNER, now=NOW + TTL, step=STEP).status == "expired"
    assert store.poll("x" * 43, client_id=OWNER, now=NOW, step=STEP).status == "unknown"


def test_redeemed_once_then_replay_names_the_bound_family(backend: Any) -> None:
    store, issued = approved(backend)
    assert store.poll(issued.device_code, client_id=OWNER, now=NOW + 5, step=STEP).status == "ok"
    script, keys, args = store.binding(issued.device_code, "fam1")
    assert script(keys=keys, args=args) == 1
    again = store.poll(issued.device_code, client_id=OWNER, now=NOW + 10, step=STEP)
    assert (again.status, again.family_id) == ("replayed", "fam1")
    # A bind after a replay tells the redeemer to revoke its family.
    assert script(keys=keys, args=args) == 0


def test_twenty_concurrent_polls_redeem_once(backend: Any) -> None:
    store, issued = approved(backend)
    results = race(lambda: store.poll(issued.device_code, client_id=OWNER, now=NOW + 5, step=STEP).status)
    assert sorted(results) == ["ok"] + ["replayed"] * 19


def test_only_digests_are_stored_and_every_key_has_a_ttl(backend: Any) -> None:
    store, issued = approved(backend)
    stored = b"".join(backend.raw_bytes())
    assert issued.device_code.encode() not in stored and issued.user_code.encode() not in stored
    keys = backend.key_names()
    assert len(keys) == 2 and all(backend.client.pttl(key) > 0 for key in keys)
    store.forget(issued.user_code)
    store.poll(issued.device_code, client_id=OWNER, now=NOW + 5, step=STEP)
    (left,) = backend.key_names()
    assert 0 < backend.client.pttl(left) <= 960_000  # the redeemed record lives as long as its tokens
