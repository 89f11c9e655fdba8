"""make bench: a real `jwtauth serve` on real Redis, driven by wrk over loopback, with its baselines.

One run measures, in this order (about 5 minutes, loopback only, everything it starts is
stopped, every Redis key it wrote is deleted):

1. the stack ceiling: bench/ceiling_app.py (Falcon + PyJWT, nothing else) under gunicorn with
   2 sync workers, kept up all run and measured again and again between the scenarios below
   (the box's speed drifts, so every ratio compares runs measured side by side: `Ceilings`);
2. the signing ceiling: tokens/s one process signs with jwtauth's own key and claims, no HTTP;
3. `jwtauth serve --workers 2` with Redis (a unique JWTAUTH_REDIS_PREFIX) and an ES256 key:
   client_credentials, password, refresh_token (each family rotated by one connection at a
   time), authorization_code (codes issued into Redis beforehand, each redeemed once), the
   same with `openid` (authorization_code + id_token: a second signature, the session link),
   introspection, client_credentials with a DPoP proof per request (proofs signed beforehand,
   each sent once) in rounds alternating with plain client_credentials and reported as its
   ratio to plain, JWKS and metadata; the workers' RSS before and after 100k tokens;
4. the same server with an RS256 key, then an EdDSA key: client_credentials;
5. Redis memory per refresh family.

The ratio targets (client_credentials ES256, password, refresh_token, JWKS, metadata) run in
`--rounds` short runs that alternate with ceiling runs; the others run once for `--duration`.
Each run: `wrk -t2 -c16`, after a warm-up; reported: requests/s, p50, p99, errors (non-2xx and
socket errors), server CPU per request (utime+stime of the server's whole process tree from
/proc), Redis's own CPU, and the CPU other processes used meanwhile (noise on a shared box).
Results go to bench/results.md.

    .venv/bin/python -m bench.run [--duration 8] [--rounds 3] [--round-seconds 4]
                                  [--only ceiling password refresh_token] [--no-write]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/run.py` as well as `python -m bench.run`
    sys.path.insert(0, str(ROOT))

from bench import assertions, memory  # noqa: E402
from bench.dpop import write_proofs  # noqa: E402
from bench.serving import (  # noqa: E402
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
from bench.sign_ceiling import per_second  # noqa: E402
from jwtauth.store.pepper import Pepper  # noqa: E402

LUA = ROOT / "bench" / "wrk.lua"
CEILING_LUA = ROOT / "bench" / "post_token.lua"
FIXTURES = ROOT / "jwtauth" / "fixtures" / "test_credentials.toml"
RESULTS = ROOT / "bench" / "results.md"
REDIS_URL = os.environ.get("JWTAUTH_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
TOKENS = "/api/v1/tokens"
BASIC = base64.b64encode(b"testclient:testpassword").decode()
# Issue 18: a flood of failing client authentications from one address (an unknown client id).
FLOOD = "failing client auth, one address"
FLOOD_BASIC = base64.b64encode(b"nobody:wrong-secret").decode()
USER, PASSWORD = "testuser@example.com", "testpassword"
PASSWORD_BODY = f"grant_type=password&username={USER.replace('@', '%40')}&password={PASSWORD}"
MEMORY_TOKENS = 100_000
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
        ceiling_index=parts[-1].ceiling_index,
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
def jwtauth_server(config: Path, keys_dir: Path, prefix: str, work: Path) -> Iterator[Server]:
    """Run `jwtauth serve --workers 2` with Redis; stop its process group afterwards."""
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="serve-", dir=work))
    env = {
        **os.environ,
        "JWTAUTH_KEYS_DIR": str(keys_dir),
        "JWTAUTH_REDIS_URL": REDIS_URL,
        "JWTAUTH_REDIS_PREFIX": prefix,
        "TMPDIR": str(work),
    }
    env.pop("JWTAUTH_ISSUER", None)
    argv = [sys.executable, "-m", "jwtauth", "serve", "--config", str(config), "--host", HOST]
    argv += ["--port", str(port), "--workers", str(WORKERS)]
    # stdout is the JSON access log: written to a real file, as a log collector would read it.
    with open(log_dir / "access.log", "wb") as out, open(log_dir / "stderr.log", "wb") as err:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=err, process_group=0)
    server = Server(proc, port, log_dir, redis.Redis.from_url(REDIS_URL))
    try:
        wait_ready(port, proc)
        yield server
    finally:
        stop(proc)


@contextlib.contextmanager
def ceiling_server() -> Iterator[Server]:
    """Run the stack-ceiling app under gunicorn with 2 sync workers."""
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="ceiling-"))
    env = {**os.environ, "CEILING_ALG": "ES256", "PYTHONPATH": str(ROOT)}
    with open(log_dir / "stderr.log", "wb") as err:
        proc = subprocess.Popen(
            with_address(gunicorn("-k", "sync"), "gunicorn", port),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            process_group=0,  # wrk's session: see the note above jwtauth_server
        )
    try:
        wait_ready(port, proc)
        yield Server(proc, port, log_dir)
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
    wrk_cpu0, redis0 = _children_cpu(), redis_cpu(server.store)
    text = wrk(url, args.duration, args, env, lua)
    wrk_cpu, redis_s = _children_cpu() - wrk_cpu0, redis_cpu(server.store) - redis0
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


def redis_cpu(store: Any) -> float:
    """Return the CPU seconds the Redis server has used (0 without one)."""
    if store is None:
        return 0.0
    info = store.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


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


# --- scenarios ------------------------------------------------------------------------------------


def refresh_tokens(server: Server, count: int, path: Path) -> Path:
    """Start `count` refresh families by password logins; write their tokens, one a line."""
    body = {"grant_type": "password", "username": USER, "password": PASSWORD}
    path.write_text("".join(post_form(server, body)["refresh_token"] + "\n" for _ in range(count)))
    return path


def issue_codes(store: Any, prefix: str, count: int, path: Path, *, oidc: bool = False) -> Path:
    """Issue `count` authorization codes straight into Redis, as the authorize page would.

    `oidc`: codes of an OpenID Connect sign-in in a browser session (scope `openid`, a nonce,
    a sid), so the exchange also signs an id_token and links the family to the session.
    """
    from jwtauth.store import CodeRecord, CodeStore

    codes = CodeStore(store, pepper=Pepper.generate(), prefix=prefix, access_token_ttl=960)
    record = CodeRecord(
        client_id="testclient",
        redirect_uri=None,
        scope="openid read write" if oidc else "read write",
        subject=USER,
        code_challenge=None,
        code_challenge_method=None,
        auth_time=time.time(),
        audience=("https://api.example.com",),
        nonce="n-0S6_WzA2Mj" if oidc else None,
        amr=("pwd",) if oidc else (),
        sid=uuid.uuid4().hex if oidc else None,
    )
    now = time.time()
    path.write_text("".join(codes.issue(record, ttl=600, now=now) + "\n" for _ in range(count)))
    return path


def issue_device_codes(store: Any, prefix: str, count: int, path: Path) -> Path:
    """Start `count` device requests straight into Redis, as the device endpoint would."""
    from jwtauth.oauth.device import new_user_code
    from jwtauth.store.device import DeviceStore

    devices = DeviceStore(store, pepper=Pepper.generate(), prefix=prefix, redeemed_ttl=960)
    now = time.time()
    codes = (
        devices.issue(
            client_id="testclient", scope=("read",), audience="https://api.example.com",
            now=now, ttl=600, interval=5, new_user_code=new_user_code,
        ).device_code
        for _ in range(count)
    )  # fmt: skip
    path.write_text("".join(code + "\n" for code in codes))
    return path


def device_polls(
    server: Server, args: argparse.Namespace, store: Any, prefix: str, work: Path, expected_rps: float
) -> Result:
    """Poll device requests nobody approves, each once: one Redis round trip per poll.

    The expected answer is a 400 authorization_pending; the errors count anything else.
    """
    polls = lambda n, tag: issue_device_codes(store, prefix, n, work / f"device-{tag}.txt")  # noqa: E731
    warm_stateful(server, args, "device", polls, expected_rps)
    return stateful("device_poll (pending)", server, args, "device", polls, expected_rps)


def stateful(
    name: str, server: Server, args: argparse.Namespace, mode: str, make: Any, expected_rps: float
) -> Result:
    """Measure a scenario whose every request consumes a token or code made beforehand."""
    # measure() never warms up a run that consumes a file: warm_stateful does, with its own.
    main = make(max(int(expected_rps * args.duration * 1.5), 4000), "main")
    return measure(name, server, TOKENS, args, _consuming(mode, main))


def warm_stateful(
    server: Server, args: argparse.Namespace, mode: str, make: Any, expected_rps: float
) -> None:
    """Warm a stateful scenario up with tokens or codes of its own."""
    if args.warmup > 0:
        warm = make(max(int(expected_rps * args.warmup * 1.5), 2000), "warmup")
        wrk(server.base + TOKENS, args.warmup, args, _consuming(mode, warm))


def _consuming(mode: str, path: Path) -> dict[str, str]:
    """wrk's environment for requests that each use up one line of `path` (bench/wrk.lua)."""
    # An assertion is the client's credential: no Basic header beside it (RFC 6749 §2.3).
    return {**fixed("POST", auth=mode != "assertion"), "BENCH_MODE": mode, "BENCH_FILE": str(path)}


def run_es256(
    server: Server,
    args: argparse.Namespace,
    store: Any,
    prefix: str,
    work: Path,
    report: dict[str, Any],
    ceilings: Ceilings,
) -> None:
    """Every scenario on the ES256 server, plus the workers' memory across 100k tokens."""
    results: dict[str, Result] = report["jwtauth"]
    cc_env = fixed("POST", "grant_type=client_credentials", auth=True)
    only = set(args.only or [])

    def wanted(name: str) -> bool:
        return not only or name in only

    if wanted("client_credentials"):
        name = "client_credentials ES256"
        wrk(server.base + TOKENS, args.warmup, args, cc_env)
        before = memory.rss_of(server.workers())
        results[name] = rounds(name, lambda a: measure(name, server, TOKENS, a, cc_env), ceilings, args)
        issued = results[name].requests
        while issued < MEMORY_TOKENS and not only:  # until 100k tokens passed through the workers
            issued += int(parse_wrk(wrk(server.base + TOKENS, 4, args, cc_env))["requests"])
        report["memory"] = {"tokens": issued, "before": before, "after": memory.rss_of(server.workers())}
        ceilings.time_passed()
    if wanted("client_credentials_jwt"):
        # Beside client_secret_basic above: private_key_jwt costs a signature check and a SET NX.
        signed = lambda n, tag: assertions.sign_assertions(  # noqa: E731
            work / "bench-jwt.pem", server.base, n, work / f"assertions-{tag}.txt"
        )
        basic = results.get("client_credentials ES256")
        expected_cc = basic.rps if basic is not None else 3000.0
        warm_stateful(server, args, "assertion", signed, expected_cc)
        name = "client_credentials private_key_jwt"
        results[name] = ceilings.mark(stateful(name, server, args, "assertion", signed, expected_cc))
    if wanted("password"):
        env = fixed("POST", PASSWORD_BODY, auth=True)
        wrk(server.base + TOKENS, args.warmup, args, env)
        results["password"] = rounds(
            "password", lambda a: measure("password", server, TOKENS, a, env), ceilings, args
        )
    expected = results["password"].rps if "password" in results else 3000.0
    if wanted("refresh_token"):
        # More families than connections: wrk builds one request to check the script before
        # it starts (bench/wrk.lua), and the token it takes is never sent.
        families = lambda _n, tag: refresh_tokens(server, 2 * args.connections, work / f"refresh-{tag}.txt")  # noqa: E731
        warm_stateful(server, args, "refresh", families, expected)
        results["refresh_token"] = rounds(
            "refresh_token",
            lambda a: stateful("refresh_token", server, a, "refresh", families, expected),
            ceilings,
            args,
        )
    if wanted("authorization_code"):
        codes = lambda n, tag: issue_codes(store, prefix, n, work / f"codes-{tag}.txt")  # noqa: E731
        warm_stateful(server, args, "code", codes, expected)
        results["authorization_code"] = ceilings.mark(
            stateful("authorization_code", server, args, "code", codes, expected)
        )
    if wanted("authorization_code_oidc"):
        # Beside the plain exchange: the same code flow with `openid`, so two signatures (the
        # access token and the id_token) and the family's link to the browser session.
        oidc_codes = lambda n, tag: issue_codes(store, prefix, n, work / f"oidc-codes-{tag}.txt", oidc=True)  # noqa: E731
        warm_stateful(server, args, "code", oidc_codes, expected)
        name = "authorization_code + id_token"
        results[name] = ceilings.mark(stateful(name, server, args, "code", oidc_codes, expected))
    if wanted("device_poll"):
        results["device_poll"] = ceilings.mark(device_polls(server, args, store, prefix, work, expected))
    if wanted("introspection"):
        access = post_form(server, {"grant_type": "password", "username": USER, "password": PASSWORD})
        env = fixed("POST", "token=" + access["access_token"], auth=True)
        results["introspection"] = ceilings.mark(
            measure("introspection", server, "/api/v1/introspect", args, env)
        )
    if wanted("client_auth_flood"):
        # Every answer is meant to be an error: 401 for the first few, then 429 before any scrypt.
        env = {**fixed("POST", "grant_type=client_credentials"), "BENCH_AUTH": FLOOD_BASIC}
        results[FLOOD] = ceilings.mark(measure(FLOOD, server, TOKENS, args, env))
    if wanted("dpop"):
        report["dpop"] = dpop_beside_plain(server, args, work, results, ceilings)
    for key, name, path in (
        ("jwks", "JWKS GET", "/jwks"),
        ("metadata", "metadata GET", "/.well-known/oauth-authorization-server"),
    ):
        if wanted(key):
            wrk(server.base + path, args.warmup, args, fixed())
            def once(a: argparse.Namespace, n: str = name, p: str = path) -> Result:
                return measure(n, server, p, a, fixed())

            results[key] = rounds(name, once, ceilings, args)


DPOP_NAME, PLAIN_BESIDE = "client_credentials ES256 + DPoP", "client_credentials ES256 (beside DPoP)"


def dpop_beside_plain(
    server: Server, args: argparse.Namespace, work: Path, results: dict[str, Result], ceilings: Ceilings
) -> list[float]:
    """Measure DPoP-bound client_credentials in rounds alternating with plain ones (P D P D P D P).

    Each DPoP round is divided by the mean of the plain rounds on either side of it (the box's
    speed drifts, as with the stack ceiling); returns those ratios. Every DPoP request carries a
    proof of its own, signed beforehand (bench/dpop.py) and checked by the server: signature,
    claims, and the jti's one-time marker in Redis.
    """
    plain_env = fixed("POST", "grant_type=client_credentials", auth=True)
    metadata = requests.get(server.base + "/.well-known/oauth-authorization-server", timeout=10).json()
    short = _short(args, args.round_seconds)

    def proofs(rps: float, seconds: float, tag: str) -> dict[str, str]:
        # Sized from the plain rate just measured: DPoP is slower, so the file never runs dry.
        count = max(int(rps * seconds * 1.3), 2000)
        path = write_proofs(metadata["token_endpoint"], count, work / f"dpop-{tag}.txt")
        return {**plain_env, "BENCH_MODE": "dpop", "BENCH_FILE": str(path)}

    wrk(server.base + TOKENS, args.warmup, args, plain_env)
    plain = [measure(PLAIN_BESIDE, server, TOKENS, short, plain_env)]
    if args.warmup > 0:
        wrk(server.base + TOKENS, args.warmup, args, proofs(plain[0].rps, args.warmup, "warmup"))
    dpop: list[Result] = []
    for k in range(args.rounds):
        env = proofs(plain[-1].rps, args.round_seconds, str(k))
        dpop.append(measure(DPOP_NAME, server, TOKENS, short, env))
        plain.append(measure(PLAIN_BESIDE, server, TOKENS, short, plain_env))
    ratios = [d.rps / ((plain[k].rps + plain[k + 1].rps) / 2) for k, d in enumerate(dpop)]
    each = " ".join(f"{x:.2f}" for x in ratios)
    print(f"  DPoP: {statistics.median(ratios):.2f}x plain client_credentials (rounds: {each})", flush=True)
    results[PLAIN_BESIDE] = ceilings.mark(combine(PLAIN_BESIDE, plain, []))
    results[DPOP_NAME] = ceilings.mark(combine(DPOP_NAME, dpop, []))
    return ratios


# --- baselines ------------------------------------------------------------------------------------


def signing_ceiling(keys_dirs: dict[str, Path], seconds: float) -> dict[str, float]:
    """Return tokens/s one process signs with each server key and jwtauth's own claims."""
    from jwtauth.keys import KeyRing
    from jwtauth.tokens.claims import access_claims, mint

    out = {}
    for alg, directory in keys_dirs.items():
        key = KeyRing(directory, retire_after=960).signer()
        assert key is not None, directory

        def sign(key: Any = key) -> str:
            now = int(time.time())
            claims = access_claims(
                issuer="http://127.0.0.1:8000",
                subject="testclient",
                client_id="testclient",
                audience="https://api.example.com",
                scope=("read", "write"),
                now=now,
                ttl=900,
                jti=uuid.uuid4().hex,
            )
            return mint(claims, key)

        out[alg] = per_second(sign, seconds)
        print(f"  signing ceiling {alg:6} {out[alg]:8.0f} tokens/s", flush=True)
    return out


# --- the run --------------------------------------------------------------------------------------


def make_keys(work: Path) -> dict[str, Path]:
    dirs = {}
    for alg in ("ES256", "RS256", "EdDSA"):
        dirs[alg] = work / f"keys-{alg}"
        subprocess.run(
            [sys.executable, "-m", "jwtauth", "keys", "--dir", str(dirs[alg]), "ensure", "--alg", alg],
            check=True,
            capture_output=True,
            cwd=ROOT,
            env={**os.environ, "JWTAUTH_CONFIG": str(FIXTURES)},
        )
    return dirs


def make_config(work: Path) -> Path:
    """The demo fixtures with refresh_grace = 0: a family used twice at once would show as errors."""
    text = FIXTURES.read_text()
    assert "refresh_grace = 5" in text
    path = work / "bench.toml"
    path.write_text(text.replace("refresh_grace = 5", "refresh_grace = 0"))
    assertions.add_key_client(path, work)  # the private_key_jwt scenario's client
    return path


def delete_prefix(store: Any, prefix: str) -> int:
    deleted = 0
    batch: list[bytes] = []
    for key in store.scan_iter(match=prefix + "*", count=2000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += store.unlink(*batch)
            batch.clear()
    if batch:
        deleted += store.unlink(*batch)
    return deleted


def environment() -> dict[str, str]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    info = redis.Redis.from_url(REDIS_URL).info("server")
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split()[1]
    packages = (
        "falcon",
        "PyJWT",
        "cryptography",
        "granian",
        "gunicorn",
        "redis",
        "hiredis",
        "prometheus-client",
    )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": ", ".join(f"{p} {version(p)}" for p in packages)
        + f", Redis {info['redis_version']}, wrk {wrk_version}",
        "load before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--sign-seconds", type=float, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="short runs per ratio target")
    parser.add_argument("--round-seconds", type=float, default=4)
    parser.add_argument(
        "--only",
        nargs="*",
        help="ES256 scenarios to run: client_credentials client_credentials_jwt password refresh_token "
        "authorization_code authorization_code_oidc device_poll introspection client_auth_flood dpop "
        "jwks metadata, and `ceiling` for the stack ceiling before and after them (default: all, "
        "plus RS256/EdDSA, baselines and memory)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/results.md")
    args = parser.parse_args()

    store = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        store.ping()
    except redis.RedisError as exc:
        print(f"bench: no Redis at {REDIS_URL}: {exc}", file=sys.stderr)
        return 2
    prefix = f"jwtauth-bench:{uuid.uuid4().hex[:12]}:"
    report: dict[str, Any] = {"env": environment(), "jwtauth": {}, "args": vars(args)}
    print(f"make bench: {report['env']['cores']} cores, Redis prefix {prefix}", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="jwtauth-bench-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        try:
            keys_dirs = make_keys(work)
            config = make_config(work)
            full = not args.only
            # The ceiling app stays up all run (idle, it costs nothing) to be measured between
            # the scenarios as well as before and after them.
            ceiling = stack.enter_context(ceiling_server()) if full or "ceiling" in args.only else None
            ceilings = report["ceilings"] = Ceilings(ceiling, args)
            print("baselines", flush=True)
            ceilings.measure("first")
            if full:
                report["signing"] = signing_ceiling(keys_dirs, args.sign_seconds)
            print("jwtauth serve, ES256", flush=True)
            with jwtauth_server(config, keys_dirs["ES256"], prefix, work) as server:
                run_es256(server, args, store, prefix, work, report, ceilings)
                report["error_lines"] = server.error_lines()
                report["access_log_lines"] = (server.log_dir / "access.log").read_bytes().count(b"\n")
            if full:
                for alg in ("RS256", "EdDSA"):
                    print(f"jwtauth serve, {alg}", flush=True)
                    with jwtauth_server(config, keys_dirs[alg], prefix, work) as server:
                        env = fixed("POST", "grant_type=client_credentials", auth=True)
                        name = f"client_credentials {alg}"
                        report["jwtauth"][name] = ceilings.mark(measure(name, server, TOKENS, args, env))
                        report["error_lines"] += server.error_lines()
                print("Redis memory per refresh family", flush=True)
                report["redis"] = memory.redis_per_family(store, prefix + "mem:")
            ceilings.measure("last")
        finally:
            deleted = delete_prefix(store, prefix)
            print(f"deleted {deleted} Redis keys under {prefix}", flush=True)
    report["seconds"] = time.monotonic() - started
    text = render(report)
    print(text)
    if not args.no_write and not args.only:
        RESULTS.write_text(text)
        print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


# --- the report -----------------------------------------------------------------------------------

DPOP_TARGET = 0.5  # DPoP-bound client_credentials against plain, measured side by side
TARGETS = {  # scenario -> (minimum ratio to the stack ceiling, what the issue asks)
    "client_credentials ES256": 1.3,
    "password": 0.8,
    "refresh_token": 0.8,
    "jwks": 2.0,
    "metadata": 2.0,
}


def render(report: dict[str, Any]) -> str:
    """Return bench/results.md."""
    env = report["env"]
    results: dict[str, Result] = report["jwtauth"]
    ceilings: Ceilings = report["ceilings"]
    highest = ceilings.highest()
    lines = [
        "# make bench: results",
        "",
        f"Generated by `make bench` (bench/run.py) on {env['date']} in {report['seconds']:.0f} s.",
        "",
        f"Machine: {env['cores']} cores ({env['cpu']}), Linux {env['kernel']}, Python {env['python']}; "
        f"{env['versions']}. Load average before the run: {env['load before']}. wrk runs on the "
        f"same cores as the server (`wrk -t2 -c{report['args']['connections']} "
        f"-d{report['args']['duration']:g}s`, after a {report['args']['warmup']:g} s warm-up), "
        "over loopback; the server is `jwtauth serve --workers 2` (granian) with the machine's Redis.",
        "",
        "Server CPU is utime+stime of the server's whole process tree per request; Redis CPU is the "
        "Redis server's own (INFO cpu); *other load* is the CPU that neither the server, Redis nor wrk "
        "used meanwhile (other work on a shared box), in cores, and *steal* the time the "
        "hypervisor took the machine's cores away during the run (summed over its rounds): a "
        "core taken for milliseconds stalls every request on it, which shows in p99. jwtauth's "
        "RS256 keys are 3072-bit (the stack ceiling's are 2048): compare them with their signing "
        "ceiling, not the stack ceiling.",
        "",
        "The box's speed drifts within a run, so the stack ceiling is measured again and again "
        f"({len(ceilings.runs)} runs, {_spread(ceilings)}): each ratio target runs in "
        f"{report['args']['rounds']} rounds of {report['args']['round_seconds']:g} s that alternate "
        "with ceiling runs, a round is divided by the mean of the ceiling runs on either side of "
        "it, and *x stack ceiling* is the median of the rounds (listed under *rounds*); req/s is "
        "their mean and p99 their worst. Other scenarios run once, judged the same way against "
        "the ceiling runs around them. *x highest* divides by the run's highest ceiling run.",
        "",
        "| scenario | req/s | x stack ceiling | rounds | x highest | p50 ms | p99 ms | errors "
        "| server CPU ms/req | Redis CPU ms/req | other load | steal ms |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results.values():
        lines.append(_row(r, ratio(r, ceilings), highest))
    lines += ["", "## Targets", ""]
    lines += _targets(results, ceilings, report)
    lines += [
        "",
        "What bounds the grants that use Redis: a round trip to Redis over loopback TCP costs "
        "the server 0.1-0.2 ms of CPU on this machine, most of it in the kernel (the TCP stack, "
        "a sleep and a wake-up, caches gone cold while Redis ran on the core), little in Python "
        "(the store's scripts skip redis-py's per-command layers); Redis's own CPU comes on top. "
        "A password login makes one once this process has proven the password (one script "
        "checks the sign-in counters and creates the family), two otherwise; a refresh one (the "
        "rotation script returns the family), a code exchange three (peek, take, then the family and its "
        "binding to the code in one pipeline); client_credentials, JWKS "
        "and metadata make none.",
    ]
    if "signing" in report:
        cc = results.get("client_credentials ES256")
        lines += ["", "## Baselines", ""]
        cpu = statistics.median(r.server_cpu_ms for r in ceilings.runs)
        lines.append(
            "- Stack ceiling (bench/ceiling_app.py, ES256, gunicorn 2 sync workers): "
            f"{len(ceilings.runs)} runs, {_spread(ceilings)}; median server CPU {cpu:.3f} ms/req "
            "(what the same app costs on this box: compare the server CPU of jwtauth with it)."
        )
        for alg, rate in report["signing"].items():
            served = results.get(f"client_credentials {alg}")
            share = f"; served client_credentials {alg}: {served.rps / rate:.2f}x of it" if served else ""
            lines.append(
                f"- Signing ceiling {alg} (one process, jwtauth's key and claims, no HTTP): "
                f"{rate:.0f} tokens/s{share}."
            )
        cc_ratio = ratio(cc, ceilings) if cc is not None else None
        if cc is not None and cc_ratio is not None:
            lines.append(
                f"- client_credentials ES256 at {cc.rps:.0f} req/s is {cc_ratio:.2f}x the stack "
                f"ceiling and {cc.rps / report['signing']['ES256']:.2f}x the signing ceiling."
            )
    if "memory" in report:
        lines += ["", "## Worker memory", ""]
        lines += memory.render_rss(report["memory"])
    if "redis" in report:
        lines += ["", "## Redis memory per refresh family", ""]
        lines += memory.render_redis(report["redis"])
    lines += ["", "## Server log", ""]
    lines.append(
        f"{report.get('access_log_lines', 0)} JSON access-log lines written by the ES256 server "
        f"(one per request); {len(report.get('error_lines', []))} ERROR/Traceback lines on stderr."
    )
    lines += [f"    {line}" for line in report.get("error_lines", [])[:10]]
    return "\n".join(lines) + "\n"


def _row(r: Result, relative: float | None, highest: float) -> str:
    shown = f"{relative:.2f}" if relative is not None else "-"
    each = " ".join(f"{x:.2f}" for x in r.ratios) or "-"
    overall = f"{r.rps / highest:.2f}" if highest else "-"
    return (
        f"| {r.name} | {r.rps:.0f} | {shown} | {each} | {overall} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
        f"| {r.errors} | {r.server_cpu_ms:.3f} | {r.redis_cpu_ms:.3f} | {r.other_cores:.2f} "
        f"| {r.steal_ms:.0f} |"
    )


def _spread(ceilings: Ceilings) -> str:
    rates = [r.rps for r in ceilings.runs]
    if not rates:
        return "none measured"
    return f"{min(rates):.0f}-{max(rates):.0f} req/s, median {statistics.median(rates):.0f}"


def _targets(results: dict[str, Result], ceilings: Ceilings, report: dict[str, Any]) -> list[str]:
    lines = []
    for name, minimum in TARGETS.items():
        r = results.get(name)
        relative = ratio(r, ceilings) if r is not None else None
        if r is None or relative is None:
            continue
        verdict = "met" if relative >= minimum else "NOT met"
        worst = f"; its worst round {min(r.ratios):.2f}x" if r.ratios else ""
        lines.append(
            f"- {r.name} ≥ {minimum}x the stack ceiling: {relative:.2f}x (median of its rounds{worst}; "
            f"{r.rps / ceilings.highest():.2f}x the run's highest ceiling) — {verdict}"
        )
    if ratios := report.get("dpop"):
        dpop, plain = results[DPOP_NAME], results[PLAIN_BESIDE]
        verdict = "met" if statistics.median(ratios) >= DPOP_TARGET else "NOT met"
        lines.append(
            f"- client_credentials with a DPoP proof ≥ {DPOP_TARGET}x plain client_credentials, measured "
            f"in rounds alternating with it: {statistics.median(ratios):.2f}x (median; rounds "
            f"{' '.join(f'{x:.2f}' for x in ratios)}; {dpop.rps:.0f} vs {plain.rps:.0f} req/s; "
            f"server CPU {dpop.server_cpu_ms:.3f} vs {plain.server_cpu_ms:.3f} ms, Redis CPU "
            f"{dpop.redis_cpu_ms:.3f} ms per request) — {verdict}"
        )
    served = [r for r in results.values() if r.name != FLOOD]  # the flood's answers are errors
    slow = [r.name for r in served if r.p99_ms > 20]
    lines.append(f"- p99 ≤ 20 ms at 16 connections: {'met' if not slow else 'NOT met: ' + ', '.join(slow)}")
    failing = [f"{r.name} ({r.errors})" for r in served if r.errors]
    lines.append(f"- zero errors: {'met' if not failing else 'NOT met: ' + ', '.join(failing)}")
    cc = results.get("client_credentials ES256")
    if cc is not None:
        verdict = "met" if cc.server_cpu_ms <= 0.2 else "NOT met"
        line = f"- server CPU per client_credentials token ≤ 0.2 ms: {cc.server_cpu_ms:.3f} ms — {verdict}"
        if ceilings.runs:
            # The absolute figure moves with the box; the ceiling app's cost on the same box is
            # the yardstick that moves with it.
            app = statistics.median(r.server_cpu_ms for r in ceilings.runs)
            line += (
                f" (the stack-ceiling app costs {app:.3f} ms per token on this box: "
                f"{cc.server_cpu_ms / app:.2f}x of it)"
            )
        lines.append(line)
    flood = results.get(FLOOD)
    if flood is not None:
        verdict = "met" if flood.server_cpu_ms <= 1.0 else "NOT met"
        lines.append(
            f"- server CPU per failing client authentication from one address ≤ 1 ms (issue 18): "
            f"{flood.server_cpu_ms:.3f} ms — {verdict}"
        )
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
