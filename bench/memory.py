"""Memory for make bench: RSS of the server's workers, Redis bytes per refresh family."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from jwtauth.store.pepper import Pepper

FAMILIES = 1000
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
    INFO used_memory over all of them (noisier: the Redis is shared).
    """
    from jwtauth.store import FamilySpec, RefreshStore

    refresh = RefreshStore(store, pepper=Pepper.generate(), prefix=prefix, grace_seconds=0, revoked_ttl=960)
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
    fresh = _usage(store, prefix, tokens[:SAMPLE])
    for issued in tokens:
        rotation = refresh.rotate(issued.token, client_id="testclient", now=now + 1, idle_ttl=1_209_600)
        assert rotation.token is not None, rotation.status
    after = int(store.info("memory")["used_memory"])
    return {
        "families": FAMILIES,
        "fresh_bytes": fresh,
        "rotated_bytes": _usage(store, prefix, tokens[:SAMPLE]),
        "info_bytes": (after - before) / FAMILIES,
    }


def _usage(store: Any, prefix: str, issued: list[Any]) -> float:
    """Return the mean MEMORY USAGE of a family's keys plus its user's subject index."""
    total = 0
    for i, family in enumerate(issued):
        # The key layout of jwtauth.store.refresh: the family hash, its used list, the index.
        subject = hashlib.sha256(f"user{i}@example.com".encode()).hexdigest()
        keys = [f"{prefix}{{f:{family.family_id}}}", f"{prefix}{{f:{family.family_id}}}:used"]
        keys.append(f"{prefix}{{s:{subject}}}")
        total += sum(int(store.memory_usage(key, samples=0) or 0) for key in keys)
    return total / len(issued)


def render_rss(memory: dict[str, Any]) -> list[str]:
    """Return the markdown lines of the workers' RSS before and after."""
    lines = [
        f"RSS of each worker after its warm-up and again after {memory['tokens']:,} client_credentials "
        "tokens through the two workers:",
        "",
        "| worker pid | RSS before MiB | RSS after MiB | change MiB |",
        "| --- | ---: | ---: | ---: |",
    ]
    for pid, before in memory["before"].items():
        after = memory["after"].get(pid)
        if after is None:
            lines.append(f"| {pid} | {before / 1024:.1f} | (gone) | - |")
            continue
        lines.append(f"| {pid} | {before / 1024:.1f} | {after / 1024:.1f} | {(after - before) / 1024:+.1f} |")
    return lines


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
        "(shared Redis: noisier).",
        f"- So 1 million live families need about {redis_memory['rotated_bytes'] * 1e6 / 2**30:.2f} GiB.",
    ]
