"""Tests for jwtauth.store.refresh: rotation, replay, reuse, revocation, stored state."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import fakeredis
import pytest

import jwtauth.store.refresh as refresh
from jwtauth.store import FamilyRecord, FamilySpec, IssuedRefresh, RefreshStore, Rotation, RotationStatus
from tests.helpers import PEPPER, race

NOW = 1_700_000_000.0
OWNER = "client-a"
OTHER = "client-b"
IDLE = 600.0
ABSOLUTE = 86_400.0
GRACE = 5.0


def make_store(backend: Any, **options: Any) -> RefreshStore:
    return RefreshStore(backend.client, pepper=PEPPER, prefix=backend.prefix, grace_seconds=GRACE, **options)


def new_family(
    store: RefreshStore, *, subject: str = "alice", client_id: str = OWNER, now: float = NOW
) -> IssuedRefresh:
    return store.create(
        FamilySpec(
            client_id=client_id,
            subject=subject,
            scope="read write",
            audience=("https://api.example.com",),
            auth_time=now - 30,
            now=now,
            absolute_ttl=ABSOLUTE,
            idle_ttl=IDLE,
        )
    )


def rotate(store: RefreshStore, token: str, *, now: float, client_id: str = OWNER) -> Rotation:
    return store.rotate(token, client_id=client_id, now=now, idle_ttl=IDLE)


def family_state(backend: Any, family_id: str) -> tuple[dict[bytes, bytes], list[bytes]]:
    key = f"{backend.prefix}{{f:{family_id}}}"
    return backend.client.hgetall(key), backend.client.lrange(f"{key}:used", 0, -1)


def successor(rotation: Rotation) -> str:
    assert rotation.token is not None
    return rotation.token


def test_create_returns_a_token_whose_family_looks_up(backend: Any) -> None:
    store = make_store(backend)
    issued = new_family(store)
    family_id, _, secret = issued.token.partition(".")
    assert (family_id, issued.generation) == (issued.family_id, 1)
    assert len(base64.urlsafe_b64decode(family_id + "==")) == 16
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32
    assert store.lookup(issued.token, now=NOW + 1) == FamilyRecord(
        family_id=issued.family_id,
        client_id=OWNER,
        subject="alice",
        scope="read write",
        audience=("https://api.example.com",),
        auth_time=NOW - 30,
        created=NOW,
        absolute_expiry=NOW + ABSOLUTE,
        idle_expiry=NOW + IDLE,
        generation=1,
    )


def test_rotation_chain_of_100_keeps_only_the_newest_token_alive(backend: Any) -> None:
    store = make_store(backend)
    issued = new_family(store)
    tokens = [issued.token]
    now = NOW
    for generation in range(2, 102):
        now += GRACE + 1
        result = rotate(store, tokens[-1], now=now)
        assert result.status is RotationStatus.OK
        assert result.family is not None and result.family.generation == generation
        assert result.family.idle_expiry == now + IDLE
        tokens.append(successor(result))
    assert len(set(tokens)) == 101
    assert {t.partition(".")[0] for t in tokens} == {issued.family_id}
    assert [store.lookup(t, now=now) is not None for t in tokens] == [False] * 100 + [True]
    newest = store.lookup(tokens[-1], now=now)
    assert newest is not None and newest.generation == 101


def test_replay_within_grace_returns_the_same_successor_and_does_not_advance(backend: Any) -> None:
    store = make_store(backend)
    issued = new_family(store)
    first = rotate(store, issued.token, now=NOW + 10)
    state_after_first = family_state(backend, issued.family_id)
    again = rotate(store, issued.token, now=NOW + 10 + GRACE - 0.5)
    assert first.status is RotationStatus.OK
    assert again.status is RotationStatus.REPLAY
    assert again.token == first.token
    assert again.family == first.family
    assert again.family is not None and again.family.generation == 2
    assert family_state(backend, issued.family_id) == state_after_first
    # The replayed successor is the live one and rotates on normally.
    onward = rotate(store, successor(again), now=NOW + 12)
    assert onward.status is RotationStatus.OK
    assert onward.family is not None and onward.family.generation == 3


def test_replay_after_grace_is_reuse_and_kills_the_family(backend: Any) -> None:
    store = make_store(backend, revoked_ttl=7200)
    issued = new_family(store)
    newest = successor(rotate(store, issued.token, now=NOW + 10))
    assert not store.is_revoked(issued.family_id)
    late = rotate(store, issued.token, now=NOW + 10 + GRACE)
    assert late == Rotation(RotationStatus.REUSE, issued.family_id)
    assert store.lookup(newest, now=NOW + 16) is None
    assert rotate(store, newest, now=NOW + 16).status is RotationStatus.UNKNOWN
    assert store.is_revoked(issued.family_id)
    tombstone = f"{backend.prefix}{{f:{issued.family_id}}}:revoked"
    assert 7_000_000 < backend.client.pttl(tombstone) <= 7_200_000
    assert family_state(backend, issued.family_id) == ({}, [])


def test_the_same_call_sent_twice_is_a_replay_even_without_grace(
    backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # redis-py re-sends the very same command after a reply lost with its connection: same
    # nonce, same now. With no grace period only the nonce tells it from a stolen token.
    store = RefreshStore(backend.client, pepper=PEPPER, prefix=backend.prefix, grace_seconds=0)
    issued = new_family(store)
    monkeypatch.setattr("jwtauth.store.refresh.secrets.token_hex", lambda n: "ab" * n)
    first = rotate(store, issued.token, now=NOW + 10)
    resent = rotate(store, issued.token, now=NOW + 10)
    assert first.status is RotationStatus.OK and resent.status is RotationStatus.REPLAY
    assert resent.token == first.token
    assert rotate(store, successor(first), now=NOW + 11).status is RotationStatus.OK


def test_a_new_call_without_grace_is_reuse(backend: Any) -> None:
    store = RefreshStore(backend.client, pepper=PEPPER, prefix=backend.prefix, grace_seconds=0)
    issued = new_family(store)
    first = rotate(store, issued.token, now=NOW + 10)
    assert rotate(store, issued.token, now=NOW + 10).status is RotationStatus.REUSE  # fresh nonce
    assert store.lookup(successor(first), now=NOW + 10) is None


def test_older_generation_is_reuse_even_inside_the_grace_window(backend: Any) -> None:
    store = make_store(backend)
    issued = new_family(store)
    second = successor(rotate(store, issued.token, now=NOW + 1))
    third = successor(rotate(store, second, now=NOW + 2))
    assert rotate(store, issued.token, now=NOW + 3).status is RotationStatus.REUSE
    assert store.lookup(third, now=NOW + 3) is None
    assert store.is_revoked(issued.family_id)


def test_concurrent_rotations_of_one_token_yield_one_successor(backend: Any) -> None:
    store = make_store(backend)
    issued = new_family(store)
    results: list[Rotation] = race(lambda: rotate(store, issued.token, now=NOW + 1))
    statuses = sorted(r.status.value for r in results)
    assert statuses == ["ok"] + ["replay"] * 19
    assert len({r.token for r in results}) == 1
    winner = successor(results[0])
    live = store.lookup(winner, now=NOW + 2)
    assert live is not None and live.generation == 2
    # Only that successor moves the family on; the original is now plainly reused.
    assert rotate(store, winner, now=NOW + 2).status is RotationStatus.OK
    assert rotate(store, issued.token, now=NOW + 3).status is RotationStatus.REUSE


def test_wrong_client_changes_nothing(backend: Any) -> None:
    store = make_store(backend)
    issued = new_family(store)
    second = successor(rotate(store, issued.token, now=NOW + 1))
    before = family_state(backend, issued.family_id)
    # Neither the current secret nor a rotated-out one lets another client act.
    current = rotate(store, second, now=NOW + 2, client_id=OTHER)
    rotated_out = rotate(store, issued.token, now=NOW + 30, client_id=OTHER)
    assert current == rotated_out == Rotation(RotationStatus.WRONG_CLIENT, issued.family_id)
    assert family_state(backend, issued.family_id) == before
    assert not store.is_revoked(issued.family_id)
    assert rotate(store, second, now=NOW + 31).status is RotationStatus.OK


def test_guessed_secret_is_unknown_and_leaves_the_family_intact(backend: Any) -> None:
    store = make_store(backend)
    issued = new_family(store)
    before = family_state(backend, issued.family_id)
    guess = f"{issued.family_id}.{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()[:43]}"
    for client_id in (OWNER, OTHER):
        result = rotate(store, guess, now=NOW + 60, client_id=client_id)
        assert result == Rotation(RotationStatus.UNKNOWN, issued.family_id)
    assert not store.revoke(guess, now=NOW + 60)
    assert family_state(backend, issued.family_id) == before
    assert not store.is_revoked(issued.family_id)
    assert rotate(store, issued.token, now=NOW + 61).status is RotationStatus.OK


@pytest.mark.parametrize(
    "token",
    [
        "",
        "no-dot",
        "a.b",
        "AAAAAAAAAAAAAAAAAAAAAA." + "A" * 42,
        "AAAAAAAAAAAAAAAAAAAAAA." + "A" * 42 + "B",  # non-canonical padding bits
        "AAAAAAAAAAAAAAAAAAAAA=." + "A" * 43,
        "AAAAAAAAAAAAAAAAAAAAAA." + "A" * 43 + ".x",
    ],
)
def test_malformed_or_unknown_tokens_are_unknown(backend: Any, token: str) -> None:
    store = make_store(backend)
    assert rotate(store, token, now=NOW).status is RotationStatus.UNKNOWN
    assert store.lookup(token, now=NOW) is None
    assert not store.revoke(token, now=NOW)


def test_idle_and_absolute_expiry(backend: Any) -> None:
    store = make_store(backend)
    idle = new_family(store)
    assert rotate(store, idle.token, now=NOW + IDLE).status is RotationStatus.UNKNOWN
    assert store.lookup(idle.token, now=NOW + IDLE) is None
    short = store.create(
        FamilySpec(
            client_id=OWNER,
            subject="alice",
            scope="read",
            audience=(),
            auth_time=NOW,
            now=NOW,
            absolute_ttl=1000,
            idle_ttl=IDLE,
        )
    )
    token, now = short.token, NOW
    for _ in range(2):
        now += 400
        result = rotate(store, token, now=now)
        assert result.family is not None
        # The idle expiry slides but never past the absolute expiry.
        assert result.family.idle_expiry == min(now + IDLE, NOW + 1000)
        token = successor(result)
    assert rotate(store, token, now=NOW + 1000).status is RotationStatus.UNKNOWN


def test_rotated_out_secret_beyond_history_is_unknown(backend: Any) -> None:
    store = make_store(backend, used_history=3)
    issued = new_family(store)
    tokens = [issued.token]
    for step in range(1, 6):
        tokens.append(successor(rotate(store, tokens[-1], now=NOW + 10 * step)))
    assert len(family_state(backend, issued.family_id)[1]) == 3
    assert rotate(store, tokens[0], now=NOW + 100).status is RotationStatus.UNKNOWN
    assert store.lookup(tokens[-1], now=NOW + 100) is not None
    assert rotate(store, tokens[3], now=NOW + 100).status is RotationStatus.REUSE


def test_revoke_by_owner_and_refused_for_another_client(backend: Any) -> None:
    store = make_store(backend)
    issued = new_family(store)
    assert not store.revoke(issued.token, client_id=OTHER, now=NOW + 1)
    assert store.lookup(issued.token, now=NOW + 1) is not None
    assert not store.is_revoked(issued.family_id)
    assert store.revoke(issued.token, client_id=OWNER, now=NOW + 2)
    assert store.lookup(issued.token, now=NOW + 2) is None
    assert rotate(store, issued.token, now=NOW + 2).status is RotationStatus.UNKNOWN
    assert store.is_revoked(issued.family_id)
    assert not store.revoke(issued.token, client_id=OWNER, now=NOW + 3)


def test_revoke_by_family_id_or_rotated_out_token(backend: Any) -> None:
    store = make_store(backend)
    by_id = new_family(store)
    assert not store.revoke(by_id.family_id, client_id=OTHER, now=NOW)
    assert store.revoke(by_id.family_id, now=NOW)
    assert store.is_revoked(by_id.family_id)
    old = new_family(store)
    newest = successor(rotate(store, old.token, now=NOW + 1))
    assert store.revoke(old.token, client_id=OWNER, now=NOW + 2)
    assert store.lookup(newest, now=NOW + 2) is None
    assert not store.is_revoked("not a family id")


def test_revoke_all_by_subject_and_by_client(backend: Any) -> None:
    store = make_store(backend)
    alice_a = new_family(store, subject="alice")
    alice_b = new_family(store, subject="alice", client_id=OTHER)
    alice_c = new_family(store, subject="alice")
    bob_b = new_family(store, subject="bob", client_id=OTHER)
    carol_a = new_family(store, subject="carol")
    with pytest.raises(ValueError, match="subject"):
        store.revoke_all()
    assert store.revoke_all(subject="alice", client_id=OTHER) == 1
    assert store.is_revoked(alice_b.family_id)
    assert store.revoke_all(subject="alice") == 2
    assert store.is_revoked(alice_a.family_id) and store.is_revoked(alice_c.family_id)
    assert store.revoke_all(subject="alice") == 0
    assert store.revoke_all(client_id=OTHER) == 1  # SCAN path: only bob's family is left
    assert store.is_revoked(bob_b.family_id)
    assert store.lookup(carol_a.token, now=NOW + 1) is not None
    assert not store.is_revoked(carol_a.family_id)


def test_every_key_has_a_ttl_within_the_absolute_expiry(backend: Any) -> None:
    store = make_store(backend)
    live = new_family(store)
    rotate(store, successor(rotate(store, live.token, now=NOW + 1)), now=NOW + 2)
    reused = new_family(store, subject="bob")
    rotate(store, reused.token, now=NOW + 1)
    rotate(store, reused.token, now=NOW + 100)
    revoked = new_family(store, subject="carol")
    store.revoke(revoked.token, now=NOW)
    keys = backend.key_names()
    assert len(keys) == 7  # live: hash + used list; 2 tombstones; 3 subject indexes
    for key in keys:
        ttl_ms = backend.client.pttl(key)
        assert 0 < ttl_ms <= ABSOLUTE * 1000, key
    family = f"{backend.prefix}{{f:{live.family_id}}}".encode()
    assert 0 < backend.client.pttl(family) <= IDLE * 1000


def test_redis_never_holds_a_usable_token_or_secret(backend: Any) -> None:
    store = make_store(backend)
    issued = [new_family(store, subject=f"user{i}") for i in range(3)]
    tokens = [i.token for i in issued]
    for i, family in enumerate(issued):
        first = rotate(store, family.token, now=NOW + 1)
        tokens.append(successor(first))
        tokens.append(successor(rotate(store, family.token, now=NOW + 2)))  # replay
        if i == 0:
            tokens.append(successor(rotate(store, successor(first), now=NOW + 3)))
    forbidden: set[bytes] = set()
    for token in tokens:
        secret_text = token.partition(".")[2]
        secret = base64.urlsafe_b64decode(secret_text + "=")
        forbidden |= {token.encode(), secret_text.encode(), secret, secret.hex().encode()}
    stored = backend.raw_bytes()
    assert len(stored) > 20
    leaks = [(blob, f) for blob in stored for f in forbidden if f in blob]
    assert leaks == []


def test_scripts_survive_a_script_cache_flush() -> None:
    # A restarted Redis forgets scripts; redis-py falls back from EVALSHA. Only on a private
    # fakeredis server: flushing the shared real Redis would hit other users.
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    store = RefreshStore(client, pepper=PEPPER)
    issued = new_family(store)
    client.script_flush()
    assert rotate(store, issued.token, now=NOW + 1).status is RotationStatus.OK


def test_a_family_starts_whole_in_one_pipeline_and_after_a_script_cache_flush() -> None:
    # create pipelines the subject index and the family (one round trip); after NOSCRIPT it
    # runs the scripts one by one, which load themselves. Either way both keys are written.
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    store = RefreshStore(client, pepper=PEPPER)
    for flush in (False, True, False):
        if flush:
            client.script_flush()
        issued = new_family(store, subject=f"user-{flush}-{secrets.token_hex(4)}")
        assert store.lookup(issued.token, now=NOW + 1) is not None
        assert issued.family_id.encode() in {
            member for key in client.scan_iter(match="jwtauth:{s:*") for member in client.zrange(key, 0, -1)
        }


def test_create_runs_the_then_steps_after_the_family_and_returns_their_replies(backend: Any) -> None:
    # The code grant binds a new family to its code in the round trip that creates the family:
    # the step sees the family already written, and its reply comes back in `after`.
    store = make_store(backend)
    probe = backend.client.register_script("return redis.call('HGET', KEYS[1], 'gen')")
    seen: list[str] = []

    def then(family_id: str) -> list[Any]:
        seen.append(family_id)
        return [(probe, [f"{backend.prefix}{{f:{family_id}}}"], [])]

    spec = FamilySpec(
        client_id=OWNER, subject="alice", scope="read", audience=("https://api.example.com",),
        auth_time=NOW, now=NOW, absolute_ttl=ABSOLUTE, idle_ttl=IDLE,
    )  # fmt: skip
    issued = store.create(spec, then=then)
    assert seen == [issued.family_id]
    assert issued.after == (b"1",)  # the family hash existed when the step ran
    assert new_family(store).after == ()  # no steps, no replies


def test_then_steps_run_again_after_a_script_cache_flush() -> None:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    store = RefreshStore(client, pepper=PEPPER)
    probe = client.register_script("return redis.call('HGET', KEYS[1], 'gen')")
    client.script_flush()  # every EVALSHA of the pipeline answers NOSCRIPT: one by one instead
    spec = FamilySpec(
        client_id=OWNER, subject="bob", scope="read", audience=("https://api.example.com",),
        auth_time=NOW, now=NOW, absolute_ttl=ABSOLUTE, idle_ttl=IDLE,
    )  # fmt: skip
    issued = store.create(spec, then=lambda family_id: [(probe, [f"jwtauth:{{f:{family_id}}}"], [])])
    assert issued.after == (b"1",)


@pytest.mark.parametrize("prefix", ["jwtauth:{x}:", "a}"])
def test_prefix_with_a_hash_tag_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="hash tag"):
        RefreshStore(fakeredis.FakeRedis(), pepper=PEPPER, prefix=prefix)


def count_commands(monkeypatch: pytest.MonkeyPatch, client: Any) -> list[tuple[Any, ...]]:
    """Record every command the client sends from now on (each one is a round trip)."""
    sent: list[tuple[Any, ...]] = []
    execute = client.execute_command

    def counting(*args: Any, **options: Any) -> Any:
        sent.append(args)
        return execute(*args, **options)

    monkeypatch.setattr(client, "execute_command", counting)
    return sent


def test_a_rotation_and_its_replay_are_one_round_trip_each(
    backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store(backend)
    rotate(store, new_family(store, subject="warm-up").token, now=NOW + 1)  # scripts loaded
    issued = new_family(store)
    sent = count_commands(monkeypatch, backend.client)
    first = rotate(store, issued.token, now=NOW + 10)
    assert first.status is RotationStatus.OK and [c[0] for c in sent] == ["EVALSHA"]
    again = rotate(store, issued.token, now=NOW + 11)
    assert again.status is RotationStatus.REPLAY and [c[0] for c in sent] == ["EVALSHA"] * 2
    # The record comes from the script's reply, yet it is the one lookup reads.
    assert first.family == again.family == store.lookup(successor(first), now=NOW + 12)
    assert first.family is not None and first.family.generation == 2


def test_replay_of_a_successor_derived_the_former_way_still_succeeds(
    backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rolling deploy: an older process rotated (generation in the KDF message), the client
    # lost the response and retries on a newer process, which must hand back that successor.
    store = make_store(backend)
    issued = new_family(store)
    with monkeypatch.context() as patch:
        patch.setattr(refresh, "_successor", lambda s, f, n: refresh._successor_v1(s, f, 2, n))
        first = rotate(store, issued.token, now=NOW + 10)
    again = rotate(store, issued.token, now=NOW + 11)
    assert again.status is RotationStatus.REPLAY and again.token == first.token
    assert rotate(store, successor(again), now=NOW + 12).status is RotationStatus.OK


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"absolute_ttl": 0}, ValueError),
        ({"idle_ttl": -1}, ValueError),
        ({"audience": "https://a"}, TypeError),
    ],
)
def test_a_family_spec_refuses_nonsense(changes: dict[str, Any], error: type[Exception]) -> None:
    fields: dict[str, Any] = dict(
        client_id=OWNER, subject="alice", scope="read", audience=(), auth_time=NOW, now=NOW,
        absolute_ttl=ABSOLUTE, idle_ttl=IDLE,
    )  # fmt: skip
    with pytest.raises(error):
        FamilySpec(**{**fields, **changes})


def test_a_family_remembers_its_session_through_rotation_and_replay(backend: Any) -> None:
    # OpenID Connect Core §12.2: an id_token issued on refresh names the login's session again.
    store = make_store(backend)
    spec = FamilySpec(
        client_id=OWNER, subject="alice", scope="openid", audience=(), auth_time=NOW, now=NOW,
        absolute_ttl=ABSOLUTE, idle_ttl=IDLE, sid="session-1",
    )  # fmt: skip
    issued = store.create(spec)
    assert family_state(backend, issued.family_id)[0][b"sid"] == b"session-1"
    first = rotate(store, issued.token, now=NOW + 10)
    again = rotate(store, issued.token, now=NOW + 11)  # replay within the grace period
    assert again.status is RotationStatus.REPLAY and again.token == first.token
    assert first.family is not None and first.family.sid == "session-1"
    assert first.family == again.family == store.lookup(successor(first), now=NOW + 12)
    # A family without a session (password grant, or created before sid existed) has none.
    plain = new_family(store, subject="bob")
    assert b"sid" not in family_state(backend, plain.family_id)[0]
    rotated = rotate(store, plain.token, now=NOW + 10)
    assert rotated.family is not None and rotated.family.sid is None
    replayed = rotate(store, plain.token, now=NOW + 11)
    assert replayed.status is RotationStatus.REPLAY and replayed.token == rotated.token
    assert replayed.family is not None and replayed.family.sid is None
