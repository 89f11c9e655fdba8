"""Redis round trips, commands and script calls per request, from INFO before and after a run.

Three counters answer "what bounds a Redis grant": INFO stats `total_reads_processed` (the read
events Redis served: one per round trip, a pipeline's commands arriving in one read), INFO
commandstats (every command, including those a script runs inside Redis, with Redis's own
microseconds) and, of those, the script calls (EVALSHA, EVAL, FCALL). The bench's own INFO
snapshot is one read and one command between the two snapshots, and is taken off.

On a Redis nobody else uses (make bench starts its own unless JWTAUTH_BENCH_REDIS_URL names one)
the figures are exact; on a shared one other clients' traffic is counted too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SCRIPT_COMMANDS = ("evalsha", "eval", "evalsha_ro", "eval_ro", "fcall", "fcall_ro")
OWN = ("info",)  # the bench's snapshots, not the server's work


@dataclass(frozen=True)
class Snapshot:
    """The counters of one INFO answer."""

    reads: int
    calls: dict[str, int]  # command name -> calls
    usec: dict[str, int]  # command name -> microseconds Redis spent in it


@dataclass(frozen=True)
class PerRequest:
    """Redis work per request of one run."""

    trips: float  # read events: round trips
    commands: float  # every command, those run by scripts included
    scripts: float  # script calls
    redis_us: float  # Redis's time in the commands (commandstats usec)
    top: tuple[tuple[str, float], ...] = ()  # the commands, most frequent first


def snapshot(info: dict[str, Any]) -> Snapshot:
    """Read a Snapshot out of redis-py's parsed `INFO all` (or `INFO stats` + `commandstats`)."""
    calls, usec = {}, {}
    for key, value in info.items():
        if key.startswith("cmdstat_") and isinstance(value, dict):
            name = key.removeprefix("cmdstat_").lower()
            calls[name] = int(value.get("calls", 0))
            usec[name] = int(value.get("usec", 0))
    return Snapshot(reads=int(info.get("total_reads_processed", 0)), calls=calls, usec=usec)


def per_request(before: Snapshot, after: Snapshot, requests: int) -> PerRequest:
    """Return the counters' growth between two snapshots, divided by `requests`."""
    n = max(requests, 1)
    calls = {
        name: count - before.calls.get(name, 0)
        for name, count in after.calls.items()
        if name not in OWN and count > before.calls.get(name, 0)
    }
    us = sum(after.usec.get(name, 0) - before.usec.get(name, 0) for name in calls)
    reads = max(after.reads - before.reads - 1, 0)  # the second snapshot's own read
    top = tuple(sorted(((name, c / n) for name, c in calls.items()), key=lambda x: (-x[1], x[0])))
    return PerRequest(
        trips=reads / n,
        commands=sum(calls.values()) / n,
        scripts=sum(calls.get(name, 0) for name in SCRIPT_COMMANDS) / n,
        redis_us=us / n,
        top=top[:4],
    )


def merge(parts: list[tuple[PerRequest, int]]) -> PerRequest:
    """Combine the rounds of one scenario, weighted by their requests."""
    n = sum(requests for _, requests in parts) or 1

    def mean(attr: str) -> float:
        return float(sum(getattr(p, attr) * requests for p, requests in parts)) / n

    top: dict[str, float] = {}
    for p, requests in parts:
        for name, rate in p.top:
            top[name] = top.get(name, 0.0) + rate * requests / n
    ranked = tuple(sorted(top.items(), key=lambda x: (-x[1], x[0])))[:4]
    return PerRequest(mean("trips"), mean("commands"), mean("scripts"), mean("redis_us"), ranked)


def explain(rows: list[tuple[str, PerRequest, float, float]], baseline_cpu: float | None) -> list[str]:
    """Return the markdown that says what bounds each Redis scenario, from its measurement.

    `rows`: (scenario, its Redis counts, server CPU ms/request, Redis CPU ms/request);
    `baseline_cpu`: client_credentials' server CPU per request (a token, no Redis), if measured.
    """
    used = [row for row in rows if row[1].trips >= 0.05]
    if not used:
        return []
    lines = [
        "| scenario | round trips/req | commands/req | script calls/req | Redis µs/req (commandstats) "
        "| Redis CPU ms/round trip | server CPU ms/req | server CPU above client_credentials, ms/round trip "
        "| commands |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, counts, server_cpu, redis_cpu in used:
        above = f"{(server_cpu - baseline_cpu) / counts.trips:.3f}" if baseline_cpu is not None else "-"
        commands = ", ".join(f"{cmd} {rate:.2f}" for cmd, rate in counts.top) or "-"
        lines.append(
            f"| {name} | {counts.trips:.2f} | {counts.commands:.2f} | {counts.scripts:.2f} "
            f"| {counts.redis_us:.1f} | {redis_cpu / counts.trips:.3f} | {server_cpu:.3f} | {above} "
            f"| {commands} |"
        )
    return lines
