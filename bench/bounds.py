"""What bounds each grant on this stack: the stack-ceiling app under jwtauth's own serving layer.

The ratio targets compare jwtauth with the stack ceiling served by gunicorn. The same minimal
app (bench/ceiling_app.py: parse the form, check Basic auth, sign, nothing else) served by
granian with `jwtauth serve`'s settings is the most any client_credentials endpoint on this
serving layer can reach; with one plain redis-py round trip per request (a SET with a TTL) it
is the most a grant that keeps state in Redis can reach: each Redis grant makes one round trip
(the code exchange too, since its take starts the refresh family). Each bound runs in rounds
alternating with the stack ceiling, like the targets, so a grant's ratio divided by its bound's
says how much of what this stack allows the grant reaches, whatever the box's speed.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable
from typing import Any

import redis

from bench.harness import CEILING_LUA, Ceilings, Result, Server, ceiling_server, measure, ratio, rounds, wrk
from bench.serving import granian
from jwtauth.cli.serve import BLOCKING_THREADS

# Route of each bound on the bound app, its label, and the jwtauth scenarios it bounds.
BOUNDS = {
    "/api/v1/tokens/": ("stack ceiling app under granian", ("client_credentials ES256",)),
    "/api/v1/tokens/redis1": (
        "stack ceiling app + 1 Redis round trip, under granian",
        ("password", "refresh_token", "introspection", "authorization_code"),
    ),
}


def bound_server(redis_url: str, prefix: str) -> contextlib.AbstractContextManager[Server]:
    """Run the ceiling app under granian as `jwtauth serve` runs (2 workers, its blocking threads)."""
    layer = (granian("--blocking-threads", str(BLOCKING_THREADS)), "granian")
    env = {"CEILING_REDIS_URL": redis_url, "CEILING_REDIS_PREFIX": prefix}
    return ceiling_server(layer, env, store=redis.Redis.from_url(redis_url))


def measure_bounds(
    args: argparse.Namespace, redis_url: str, prefix: str, report: dict[str, Any], ceilings: Ceilings
) -> None:
    """Measure every bound in rounds alternating with the stack ceiling, into report["bounds"]."""
    out: dict[str, Result] = report.setdefault("bounds", {})
    with bound_server(redis_url, prefix) as server:
        for path, (name, _) in BOUNDS.items():
            env = {"CEILING_ALG": "ES256", "CEILING_PATH": path}
            wrk(server.base + path, args.warmup, args, env, CEILING_LUA)
            out[path] = rounds(name, _runner(name, server, path, env), ceilings, args)


def _runner(
    name: str, server: Server, path: str, env: dict[str, str]
) -> Callable[[argparse.Namespace], Result]:
    return lambda args: measure(name, server, path, args, env, CEILING_LUA)


def render(report: dict[str, Any], ceilings: Ceilings) -> list[str]:
    """The section of bench/results.md on the bounds, and each grant measured against its own."""
    measured: dict[str, Result] = report.get("bounds", {})
    if not measured:
        return ["Not measured in this run (`--only bounds`)."]
    lines = [
        "The stack-ceiling app (the same minimal Falcon + PyJWT endpoint) served by granian with "
        f"`jwtauth serve`'s settings (2 workers, {BLOCKING_THREADS} blocking threads each), as is and with "
        "one plain redis-py round trip per request (a SET with a TTL): the most an "
        "endpoint with that much work can reach on this serving layer, in rounds alternating with "
        "the stack ceiling like the targets. *x its bound* divides a scenario's ratio by its "
        "bound's: how much of what this stack allows it reaches.",
        "",
        "| bound | req/s | x stack ceiling | rounds | p99 ms | server CPU ms/req | Redis trips/req |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in measured.values():
        trips = f"{r.redis.trips:.2f}" if r.redis is not None else "-"
        each = " ".join(f"{x:.2f}" for x in r.ratios) or "-"
        lines.append(
            f"| {r.name} | {r.rps:.0f} | {_ratio_text(ratio(r, ceilings))} | {each} | {r.p99_ms:.2f} | "
            f"{r.server_cpu_ms:.3f} | {trips} |"
        )
    return [*lines, "", *against_bounds(report, ceilings)]


def against_bounds(report: dict[str, Any], ceilings: Ceilings) -> list[str]:
    """Each ratio target's scenario beside the bound of its round trips (README and results.md)."""
    measured: dict[str, Result] = report.get("bounds", {})
    if not measured:
        return []
    lines = [
        "| scenario | x stack ceiling | its bound | bound x stack ceiling | x its bound |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for path, (label, scenarios) in BOUNDS.items():
        bound = measured.get(path)
        limit = ratio(bound, ceilings) if bound is not None else None
        for key in scenarios:
            r = report["jwtauth"].get(key)
            mine = ratio(r, ceilings) if r is not None else None
            share = mine / limit if mine is not None and limit else None
            lines.append(
                f"| {key} | {_ratio_text(mine)} | {label} | {_ratio_text(limit)} | {_ratio_text(share)} |"
            )
    return lines


def _ratio_text(x: float | None) -> str:
    return f"{x:.2f}" if x is not None else "-"
