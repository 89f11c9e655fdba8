"""The harness of make bench: servers, wrk runs, results, and the stack ceiling measured between them."""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests

from bench import roundtrips
from bench.serving import (
    CLK_TCK,
    HOST,
    busy_ticks,
    free_port,
    gunicorn,
    parse_wrk,
    stop,
    tree_cpu_ticks,
    wait_ready,
    with_address,
)
from jwtauth.store.pepper import read_pepper

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "wrk.lua"
CEILING_LUA = ROOT / "bench" / "post_token.lua"
FIXTURES = ROOT / "jwtauth" / "fixtures" / "test_credentials.toml"
RESULTS = ROOT / "bench" / "results.md"
# A Redis of the bench's own (private_redis) unless this names one: on a shared Redis the
# round-trip counts and Redis CPU include other clients' work.
REDIS_URL = os.environ.get("JWTAUTH_BENCH_REDIS_URL", "")
TOKENS = "/api/v1/tokens"
BASIC = base64.b64encode(b"testclient:testpassword").decode()
# Issue 18: a flood of failing client authentications from one address (an unknown client id).
FLOOD = "failing client auth, one address"
FLOOD_BASIC = base64.b64encode(b"nobody:wrong-secret").decode()
USER, PASSWORD = "testuser@example.com", "testpassword"
PASSWORD_BODY = f"grant_type=password&username={USER.replace('@', '%40')}&password={PASSWORD}"
MEMORY_TOKENS = 1_000_000
WORKERS = 2


@dataclass
class Result:
    """One wrk run against one server."""

    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    server_cpu_ms: float  # per request
    redis_cpu_ms: float  # per request: the Redis server's own CPU (INFO cpu)
    other_cores: float  # CPU used by neither the server, Redis nor wrk, in cores
    steal_ms: float = 0.0  # CPU time the hypervisor took from this machine's cores meanwhile
    notes: list[str] = field(default_factory=list)
    # The stack-ceiling run just before this one (Ceilings.runs index; -1: none, None: not
    # recorded): it and the next one are this scenario's reference.
    ceiling_index: int | None = None
    ratios: list[float] = field(default_factory=list)  # per round, for the ratio targets
    redis: roundtrips.PerRequest | None = None  # round trips, commands, scripts per request
    round_rps: list[float] = field(default_factory=list)  # req/s of each round, in order


class Ceilings:
    """The stack ceiling, measured again and again through a run, next to what it judges.

    The box's speed drifts (other tenants, the host): in one run the ceiling moved 20% within
    half a minute. So a scenario is never compared with a ceiling measured minutes away: the
    ratio targets are measured in short rounds that alternate with ceiling runs (C S C S C S C),
    each round judged against the mean of the ceiling runs on either side of it, and the
    scenario's ratio is the median of its rounds. Other scenarios are judged against the
    ceiling runs around them the same way, with one round.
    """

    def __init__(self, server: Server | None, args: argparse.Namespace) -> None:
        self.server, self.args = server, args
        self.runs: list[Result] = []
        self._last_was_ceiling = False

    def measure(self, label: str, seconds: float | None = None) -> None:
        """Measure the ceiling now, unless nothing was measured since the last ceiling run."""
        if self.server is None or self._last_was_ceiling:
            return
        args = self.args if seconds is None else _short(self.args, seconds)
        env = {"CEILING_ALG": "ES256"}
        name = f"stack ceiling ({label})"
        self.runs.append(measure(name, self.server, "/api/v1/tokens/", args, env, CEILING_LUA))
        self._last_was_ceiling = True

    def time_passed(self) -> None:
        """Other work ran since the last ceiling run: the next `measure` must run."""
        self._last_was_ceiling = False

    def mark(self, r: Result) -> Result:
        """Record that `r` was measured after the latest ceiling run."""
        r.ceiling_index = len(self.runs) - 1
        self._last_was_ceiling = False
        return r

    def reference(self, r: Result) -> float:
        """The mean of the ceiling runs just before and just after `r` (0: none measured)."""
        i = len(self.runs) - 1 if r.ceiling_index is None else r.ceiling_index
        around = [c.rps for c in self.runs[max(i, 0) : i + 2]]
        return sum(around) / len(around) if around else 0.0

    def highest(self) -> float:
        return max((c.rps for c in self.runs), default=0.0)


def rounds(
    name: str, once: Callable[[argparse.Namespace], Result], ceilings: Ceilings, args: argparse.Namespace
) -> Result:
    """Measure a ratio target in `args.rounds` short runs, each between two ceiling runs."""
    short = _short(args, args.round_seconds)
    parts = []
    for k in range(args.rounds):
        ceilings.measure(f"before {name} {k + 1}", args.round_seconds)
        parts.append(ceilings.mark(once(short)))
    ceilings.measure(f"after {name}", args.round_seconds)
    ratios = [p.rps / ref for p in parts if (ref := ceilings.reference(p))]
    if ratios:
        each = " ".join(f"{x:.2f}" for x in ratios)
        print(f"  {name}: {statistics.median(ratios):.2f}x the stack ceiling (rounds: {each})", flush=True)
    return combine(name, parts, ratios)


def combine(name: str, parts: list[Result], ratios: list[float]) -> Result:
    """Return one scenario's result from its rounds: mean req/s, worst p99, summed requests."""
    n = sum(p.requests for p in parts)
    return Result(
        name=name,
        rps=sum(p.rps for p in parts) / len(parts),
        p50_ms=statistics.median(p.p50_ms for p in parts),
        p99_ms=max(p.p99_ms for p in parts),  # the worst round: a spike is not averaged away
        requests=n,
        errors=sum(p.errors for p in parts),
        server_cpu_ms=sum(p.server_cpu_ms * p.requests for p in parts) / n,
        redis_cpu_ms=sum(p.redis_cpu_ms * p.requests for p in parts) / n,
        other_cores=sum(p.other_cores for p in parts) / len(parts),
        steal_ms=sum(p.steal_ms for p in parts),
        ratios=ratios,
        round_rps=[p.rps for p in parts],
        ceiling_index=parts[-1].ceiling_index,
        redis=roundtrips.merge([(p.redis, p.requests) for p in parts if p.redis is not None])
        if any(p.redis is not None for p in parts)
        else None,
    )


def ratio(r: Result, ceilings: Ceilings) -> float | None:
    """A scenario's speed relative to the stack ceiling: its rounds' median, or its one run's."""
    if r.ratios:
        return statistics.median(r.ratios)
    reference = ceilings.reference(r)
    return r.rps / reference if reference else None


def _short(args: argparse.Namespace, seconds: float) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "duration": seconds, "warmup": 0})


# --- processes ------------------------------------------------------------------------------------


@dataclass
class Server:
    """A running server process group on 127.0.0.1."""

    proc: subprocess.Popen[bytes]
    port: int
    log_dir: Path
    store: Any = None  # the Redis it uses, to read its CPU
    pepper: Any = None  # its keys folder's pepper: records written for it straight into Redis use it
    config: Path | None = None  # its config file: records written for it follow its settings

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def workers(self) -> list[int]:
        """Return the pids of the server's direct children (its workers)."""
        children: list[int] = []
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            children += [int(pid) for pid in (task / "children").read_text().split()]
        return sorted(children)

    def error_lines(self) -> list[str]:
        text = (self.log_dir / "stderr.log").read_text(errors="replace")
        return [line for line in text.splitlines() if " ERROR " in line or "Traceback" in line]


# Every server runs in a process group of its own (stopped as a group) but in the bench's own
# session, where wrk runs too. With autogroup scheduling (Linux's default) the kernel first
# shares the CPU between sessions, then between the threads inside each: a server in a session
# of its own got the cores in bursts against wrk's session on this 2-core box, and its p99
# spiked to 20-40 ms in one 4-second run in three while the same server in wrk's session held
# 5-6 ms and served ~15% more (bench/serving-layers.md). A load generator sharing the server's
# cores is this bench's artefact, so both servers are scheduled thread by thread, as peers of
# wrk, the same for the stack ceiling as for jwtauth.


@contextlib.contextmanager
def jwtauth_server(config: Path, keys_dir: Path, prefix: str, work: Path, redis_url: str) -> Iterator[Server]:
    """Run `jwtauth serve --workers 2` with Redis; stop its process group afterwards."""
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="serve-", dir=work))
    env = {
        **os.environ,
        "JWTAUTH_KEYS_DIR": str(keys_dir),
        "JWTAUTH_REDIS_URL": redis_url,
        "JWTAUTH_REDIS_PREFIX": prefix,
        "TMPDIR": str(work),
    }
    env.pop("JWTAUTH_ISSUER", None)
    argv = [sys.executable, "-m", "jwtauth", "serve", "--config", str(config), "--host", HOST]
    argv += ["--port", str(port), "--workers", str(WORKERS)]
    # stdout is the JSON access log: written to a real file, as a log collector would read it.
    with open(log_dir / "access.log", "wb") as out, open(log_dir / "stderr.log", "wb") as err:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=err, process_group=0)
    server = Server(proc, port, log_dir, redis.Redis.from_url(redis_url), read_pepper(keys_dir), config)
    try:
        wait_ready(port, proc)
        yield server
    finally:
        stop(proc)


@contextlib.contextmanager
def ceiling_server(
    layer: tuple[list[str], str] | None = None, env: dict[str, str] | None = None, store: Any = None
) -> Iterator[Server]:
    """Run the stack-ceiling app under gunicorn with 2 sync workers, or under `layer`.

    `layer`: another serving layer's argv and how it takes its address (bench/serving.py);
    `env`: more of the app's settings; `store`: the Redis it uses, to read its CPU.
    """
    argv, kind = layer or (gunicorn("-k", "sync"), "gunicorn")
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="ceiling-"))
    full_env = {**os.environ, "CEILING_ALG": "ES256", "PYTHONPATH": str(ROOT), **(env or {})}
    with open(log_dir / "stderr.log", "wb") as err:
        proc = subprocess.Popen(
            with_address(argv, kind, port),
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            process_group=0,  # wrk's session: see the note above jwtauth_server
        )
    try:
        wait_ready(port, proc)
        yield Server(proc, port, log_dir, store)
    finally:
        stop(proc)


# --- wrk ------------------------------------------------------------------------------------------


def wrk(url: str, duration: float, args: argparse.Namespace, env: dict[str, str], lua: Path = LUA) -> str:
    """Run wrk once and return its output."""
    full_env = {**os.environ, "BENCH_THREADS": "2", **env}
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{args.connections}",
            f"-d{max(round(duration), 1)}s",
            "--timeout",
            "5s",
            "-s",
            str(lua),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 30,
        env=full_env,
    )
    return out.stdout


def measure(
    name: str, server: Server, path: str, args: argparse.Namespace, env: dict[str, str], lua: Path = LUA
) -> Result:
    """Warm up, then measure one wrk run: throughput, latency, errors, server CPU."""
    url = server.base + path
    if args.warmup > 0 and "BENCH_FILE" not in env:
        wrk(url, args.warmup, args, env, lua)
    cpu0, busy0, wall0 = tree_cpu_ticks(server.proc.pid), busy_ticks(), time.monotonic()
    steal0 = steal_ticks()
    wrk_cpu0, (redis0, counts0) = _children_cpu(), redis_state(server.store)
    text = wrk(url, args.duration, args, env, lua)
    redis1, counts1 = redis_state(server.store)
    wrk_cpu, redis_s = _children_cpu() - wrk_cpu0, redis1 - redis0
    cpu1, busy1, wall1 = tree_cpu_ticks(server.proc.pid), busy_ticks(), time.monotonic()
    steal = (steal_ticks() - steal0) * 1000 / CLK_TCK
    vals = parse_wrk(text)
    n = max(int(vals["requests"]), 1)
    # A device poll's expected answer is a 400: there, wrk.lua counts the unexpected ones.
    answers = "unexpected" if "unexpected" in vals else "non2xx"
    server_s = (cpu1 - cpu0) / CLK_TCK
    result = Result(
        name=name,
        rps=vals["rps"],
        p50_ms=vals["p50_us"] / 1000,
        p99_ms=vals["p99_us"] / 1000,
        requests=n,
        errors=sum(int(vals[k]) for k in (answers, "connect", "read", "write", "timeout")),
        server_cpu_ms=server_s * 1000 / n,
        redis_cpu_ms=redis_s * 1000 / n,
        other_cores=((busy1 - busy0) / CLK_TCK - server_s - wrk_cpu - redis_s) / (wall1 - wall0),
        steal_ms=steal,
        redis=roundtrips.per_request(counts0, counts1, n) if counts0 and counts1 else None,
    )
    print(
        f"  {name:40} {result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
        f"errors {result.errors}  server CPU {result.server_cpu_ms:.3f} ms/req  "
        f"Redis CPU {result.redis_cpu_ms:.3f} ms/req  other load {result.other_cores:.2f}  "
        f"steal {result.steal_ms:.0f} ms",
        flush=True,
    )
    return result


def steal_ticks() -> int:
    """Ticks the hypervisor ran something else on this machine's cores (/proc/stat: steal)."""
    return int(Path("/proc/stat").read_text().split("\n", 1)[0].split()[8])


def redis_state(store: Any) -> tuple[float, roundtrips.Snapshot | None]:
    """Return the CPU seconds the Redis server has used and its counters (0, None without one).

    One INFO command, so the snapshot adds one read and one command to what it measures.
    """
    if store is None:
        return 0.0, None
    info = store.info("all")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"]), roundtrips.snapshot(info)


@contextlib.contextmanager
def private_redis(work: Path) -> Iterator[str]:
    """Yield the URL of Redis for the run: JWTAUTH_BENCH_REDIS_URL, else a redis-server of its own.

    Its own: on a free loopback port, no persistence (nothing a grant does waits for a disk),
    stopped afterwards; the machine's Redis may be shared, and its other clients' commands would
    count as the server's round trips.
    """
    if REDIS_URL or shutil.which("redis-server") is None:
        yield REDIS_URL or "redis://127.0.0.1:6379/0"
        return
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(work), "--protected-mode", "yes"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0)
    url = f"redis://{HOST}:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        for _ in range(100):
            with contextlib.suppress(redis.ConnectionError):
                client.ping()
                break
            time.sleep(0.05)
        client.close()
        yield url
    finally:
        stop(proc)


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fixed(method: str = "GET", body: str = "", auth: bool = False) -> dict[str, str]:
    return {"BENCH_METHOD": method, "BENCH_BODY": body, "BENCH_AUTH": BASIC if auth else ""}


def post_form(server: Server, body: dict[str, str]) -> dict[str, Any]:
    answer = requests.post(server.base + TOKENS, data=body, auth=("testclient", "testpassword"), timeout=10)
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result
