"""Memory for make bench: RSS of the server's workers, Redis bytes per refresh family and per session."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path
from typing import Any

from jwtauth.store.pepper import Pepper

# Any pepper will do: these records are written and weighed here, never read by a server.
PEPPER = Pepper.generate()
FAMILIES = 1000
SESSIONS = 1000
SAMPLE = 100


def rss_of(pids: list[int]) -> dict[int, int]:
    """Return each process's resident set size in KiB (VmRSS)."""
    out = {}
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out[pid] = int(line.split()[1])
    return out


def redis_per_family(store: Any, prefix: str) -> dict[str, float]:
    """Create FAMILIES refresh families (one user each), rotate each once, and weigh them.

    Two measures: MEMORY USAGE summed over one family's keys (its hash, its list of
    rotated-out digests and its user's index), averaged over SAMPLE families; and the change of
    INFO used_memory over all of them (noisier: it counts the allocator too).
    """
    from jwtauth.store import FamilySpec, RefreshStore

    refresh = RefreshStore(store, pepper=PEPPER, prefix=prefix, grace_seconds=0, revoked_ttl=960)
    now = time.time()
    before = int(store.info("memory")["used_memory"])
    tokens = []
    for i in range(FAMILIES):
        issued = refresh.create(
            FamilySpec(
                client_id="testclient",
                subject=f"user{i}@example.com",
                scope="read write",
                audience=("https://api.example.com",),
                auth_time=now,
                now=now,
                absolute_ttl=2_592_000,
                idle_ttl=1_209_600,
            )
        )
        tokens.append(issued)
    fresh = _usage(store, refresh, tokens[:SAMPLE])
    for issued in tokens:
        rotation = refresh.rotate(issued.token, client_id="testclient", now=now + 1, idle_ttl=1_209_600)
        assert rotation.token is not None, rotation.status
    after = int(store.info("memory")["used_memory"])
    return {
        "families": FAMILIES,
        "fresh_bytes": fresh,
        "rotated_bytes": _usage(store, refresh, tokens[:SAMPLE]),
        "info_bytes": (after - before) / FAMILIES,
    }


def _usage(store: Any, refresh: Any, issued: list[Any]) -> float:
    """Return the mean MEMORY USAGE of a family's keys plus its user's subject index."""
    total = 0
    for i, family in enumerate(issued):
        # The store's own key builders: the family's keys (its hash, its used list; a revoked
        # marker weighs 0 until revocation) and its user's index, keyed with the pepper.
        keys = [*refresh._family_keys(family.family_id), refresh._subject_key(f"user{i}@example.com")]
        total += sum(int(store.memory_usage(key, samples=0) or 0) for key in keys)
    return total / len(issued)


def slope(samples: list[tuple[int, int]]) -> float:
    """Least-squares slope of (tokens, KiB) samples, in KiB per 100,000 tokens (0: too few)."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_x = sum(x for x, _ in samples) / n
    mean_y = sum(y for _, y in samples) / n
    var = sum((x - mean_x) ** 2 for x, _ in samples)
    if var == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in samples) / var * 100_000


def rss_summary(samples: list[tuple[int, dict[int, int]]]) -> list[dict[str, Any]]:
    """Per worker: RSS first, last and highest (KiB) and its slope over the samples.

    `samples`: (tokens issued so far, {worker pid: RSS KiB}), in order; a worker missing from a
    later sample (restarted) is summarised over the samples it is in.
    """
    out = []
    for pid in samples[0][1] if samples else {}:
        mine = [(tokens, rss[pid]) for tokens, rss in samples if pid in rss]
        out.append({
            "pid": pid, "first": mine[0][1], "last": mine[-1][1], "max": max(y for _, y in mine),
            "slope": slope(mine), "samples": len(mine), "complete": len(mine) == len(samples),
        })  # fmt: skip
    return out


def render_rss(memory: dict[str, Any]) -> list[str]:
    """Return the markdown lines of the workers' RSS across the tokens."""
    samples = memory["samples"]
    tokens = samples[-1][0] if samples else 0
    lines = [
        f"RSS of each worker after its warm-up and then every few seconds while {tokens:,} "
        f"client_credentials tokens went through the two workers ({len(samples)} samples"
        f"{'' if memory.get('reached', True) else '; the time cap stopped it short of the target'}); "
        "the slope is the least-squares fit of RSS against tokens issued:",
        "",
        "| worker pid | first MiB | last MiB | highest MiB | change MiB | slope KiB per 100k tokens |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for w in rss_summary(samples):
        gone = "" if w["complete"] else " (restarted)"
        lines.append(
            f"| {w['pid']}{gone} | {w['first'] / 1024:.1f} | {w['last'] / 1024:.1f} "
            f"| {w['max'] / 1024:.1f} | {(w['last'] - w['first']) / 1024:+.1f} | {w['slope']:+.1f} |"
        )
    return lines


def redis_per_session(store: Any, prefix: str) -> dict[str, float]:
    """Weigh what Redis holds for OpenID Connect browser sessions (jwtauth.store.sessions).

    A session lives in its signed cookie: Redis holds, per session, the grants made in it
    (so its logout can revoke them) and, once it ended, its end marker. SESSIONS
    sessions of one user each, one family each, then ended: MEMORY USAGE over SAMPLE of them.
    """
    from jwtauth.store.redisclient import in_order
    from jwtauth.store.sessions import SessionMarks

    marks = SessionMarks(store, pepper=PEPPER, prefix=prefix, session_ttl=86_400)
    sessions = [(f"user{i}@example.com", uuid.uuid4().hex) for i in range(SESSIONS)]
    before = int(store.info("memory")["used_memory"])
    for user, sid in sessions:
        now = time.time()
        in_order(store, marks.linking(user, sid, uuid.uuid4().hex, until=now + 86_400, now=now))

    def keys(user: str, sid: str, suffix: str) -> str:
        # jwtauth.store.sessions' layout: the user's base key (keyed with the pepper), then per sid.
        return f"{marks._user(user)}:{suffix}:{hashlib.sha256(sid.encode()).hexdigest()}"

    def usage(suffix: str) -> float:
        sizes = [store.memory_usage(keys(u, s, suffix), samples=0) or 0 for u, s in sessions[:SAMPLE]]
        return sum(int(x) for x in sizes) / SAMPLE

    linked = usage("grants")
    middle = int(store.info("memory")["used_memory"])
    for user, sid in sessions:
        marks.end(user, sid)
    return {
        "sessions": SESSIONS,
        "linked_bytes": linked,
        "ended_bytes": usage("end"),
        "info_linked_bytes": (middle - before) / SESSIONS,
    }


def render_sessions(sessions: dict[str, float]) -> list[str]:
    """Return the markdown lines of the Redis memory per OpenID Connect session."""
    return [
        "A browser session lives in its signed cookie; Redis learns of it only through what must "
        f"be revocable (jwtauth/store/sessions.py). {int(sessions['sessions']):,} sessions of one "
        "user each, one refresh family started in each, then each logged out:",
        "",
        "- A session that started no refresh family: 0 bytes.",
        f"- A live session with one refresh family: {sessions['linked_bytes']:.0f} bytes (MEMORY USAGE "
        f"of its family set; INFO used_memory grew by {sessions['info_linked_bytes']:.0f} bytes per "
        "session), on top of the family's own bytes above.",
        f"- A session that ended: {sessions['ended_bytes']:.0f} bytes more for its end marker, kept "
        "for the session lifetime so a copied cookie dies with it.",
    ]


def render_redis(redis_memory: dict[str, float]) -> list[str]:
    """Return the markdown lines of the Redis memory per refresh family."""
    return [
        f"{int(redis_memory['families']):,} families, one user each (so one subject index each: the "
        "worst case), every family rotated once:",
        "",
        "- MEMORY USAGE of a family's keys plus its subject index: "
        f"{redis_memory['fresh_bytes']:.0f} bytes new, {redis_memory['rotated_bytes']:.0f} bytes after "
        "one rotation (the list of rotated-out digests).",
        f"- INFO used_memory grew by {redis_memory['info_bytes']:.0f} bytes per family "
        "(noisier: it counts the allocator too).",
        f"- So 1 million live families need about {redis_memory['rotated_bytes'] * 1e6 / 2**30:.2f} GiB.",
    ]
