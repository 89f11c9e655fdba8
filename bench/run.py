"""make bench: a real `jwtauth serve` on Redis, driven by wrk over loopback, with its baselines.

One run measures, in this order (about 10 minutes, loopback only, everything it starts is
stopped, every Redis key it wrote is deleted):

1. the stack ceiling: bench/ceiling_app.py (Falcon + PyJWT, nothing else) under gunicorn with
   2 sync workers, kept up all run and measured again and again between the scenarios below
   (the box's speed drifts, so every ratio compares runs measured side by side: `Ceilings`);
2. the signing ceiling: tokens/s one process signs with jwtauth's own key and claims, no HTTP;
3. `jwtauth serve --workers 2` with Redis (a redis-server of the run's own unless
   JWTAUTH_BENCH_REDIS_URL names one; a unique JWTAUTH_REDIS_PREFIX) and an ES256 key
   (bench/scenarios.py): client_credentials, then on to a million tokens with the workers'
   RSS sampled every 10 s; private_key_jwt; password, refresh_token (each family rotated by one
   connection at a time), authorization_code (codes issued into Redis beforehand, each
   redeemed once), the same with `openid` (+ id_token), device polling, introspection,
   userinfo, PAR push, a flood of failing client authentications, client_credentials with a
   DPoP proof per request in rounds alternating with plain ones, JWKS and metadata;
4. the bounds (bench/bounds.py): the stack-ceiling app under jwtauth's own serving layer, as is
   and with one Redis round trip per request: the most a grant can reach on this stack;
5. with --peers (make bench PEERS=1): node-oidc-provider, 2 workers, ES256 JWT access tokens,
   client_credentials and refresh_token with rotation (bench/peers.py);
6. the same jwtauth with an RS256 key, then an EdDSA key: client_credentials;
7. Redis memory per refresh family and per OpenID Connect session.

Issue 20's ratio targets (client_credentials, password, refresh_token, introspection,
authorization_code) and the peer's scenarios run in `--rounds` short runs that alternate with
ceiling runs; the others run once for `--duration`. Each run: `wrk -t2 -c16`, after a warm-up;
reported: requests/s, p50, p99, errors (non-2xx and socket errors), server CPU per request
(utime+stime of the server's whole process tree from /proc), Redis's own CPU, Redis round trips,
commands and script calls per request (INFO, bench/roundtrips.py), and the CPU other processes
used meanwhile (noise on a shared box). Results go to bench/results.md (bench/report.py), and
the README's performance block.

    .venv/bin/python -m bench.run [--duration 8] [--rounds 5] [--round-seconds 4] [--peers]
                                  [--only ceiling password refresh_token peer] [--no-write]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/run.py` as well as `python -m bench.run`
    sys.path.insert(0, str(ROOT))

from bench import assertions, bounds, memory, peers  # noqa: E402
from bench.harness import (  # noqa: E402
    FIXTURES,
    REDIS_URL,
    RESULTS,
    TOKENS,
    Ceilings,
    ceiling_server,
    fixed,
    jwtauth_server,
    measure,
    private_redis,
)
from bench.report import README, render, render_readme, replace_block  # noqa: E402
from bench.scenarios import run_es256  # noqa: E402
from bench.sign_ceiling import per_second  # noqa: E402

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


def environment(redis_url: str) -> dict[str, str]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    info = redis.Redis.from_url(redis_url).info("server")
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
        "redis": "its own redis-server (no persistence), started for the run"
        if not REDIS_URL
        else f"the Redis at JWTAUTH_BENCH_REDIS_URL ({redis_url}), maybe shared",
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--sign-seconds", type=float, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="short runs per ratio target")
    parser.add_argument("--round-seconds", type=float, default=4)
    parser.add_argument(
        "--only",
        nargs="*",
        help="scenarios to run: client_credentials client_credentials_jwt password refresh_token "
        "authorization_code authorization_code_oidc device_poll introspection userinfo par "
        "client_auth_flood dpop jwks metadata, `bounds`, `peer` (with --peers), and `ceiling` for the stack "
        "ceiling before and after them (default: all, plus RS256/EdDSA, baselines and memory)",
    )
    parser.add_argument(
        "--peers", action="store_true", help="also run node-oidc-provider beside jwtauth (needs node and npm)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/results.md")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="jwtauth-bench-") as tmp, private_redis(Path(tmp)) as url:
        store = redis.Redis.from_url(url, socket_connect_timeout=1)
        try:
            store.ping()
        except redis.RedisError as exc:
            print(f"bench: no Redis at {url}: {exc}", file=sys.stderr)
            return 2
        report: dict[str, Any] = {"env": environment(url), "jwtauth": {}, "peer": {}, "args": vars(args)}
        prefix = f"jwtauth-bench:{uuid.uuid4().hex[:12]}:"
        print(f"make bench: {report['env']['cores']} cores, Redis {url}, prefix {prefix}", flush=True)
        try:
            run(args, store, url, prefix, Path(tmp), report)
        finally:
            deleted = delete_prefix(store, prefix)
            print(f"deleted {deleted} Redis keys under {prefix}", flush=True)
    report["seconds"] = time.monotonic() - started
    text = render(report)
    print(text)
    if not args.no_write and not args.only:
        RESULTS.write_text(text)
        README.write_text(replace_block(README.read_text(), render_readme(report)))
        print(f"wrote {RESULTS.relative_to(ROOT)} and the performance block of README.md")
    return 0


def run(
    args: argparse.Namespace, store: Any, url: str, prefix: str, work: Path, report: dict[str, Any]
) -> None:
    """Every measurement of one run, into `report`."""
    keys_dirs = make_keys(work)
    config = make_config(work)
    full = not args.only
    with contextlib.ExitStack() as stack:
        # The ceiling app stays up all run (idle, it costs nothing) to be measured between
        # the scenarios as well as before and after them.
        ceiling = stack.enter_context(ceiling_server()) if full or "ceiling" in args.only else None
        ceilings = report["ceilings"] = Ceilings(ceiling, args)
        print("baselines", flush=True)
        ceilings.measure("first")
        if full:
            report["signing"] = signing_ceiling(keys_dirs, args.sign_seconds)
        print("jwtauth serve, ES256", flush=True)
        with jwtauth_server(config, keys_dirs["ES256"], prefix, work, url) as server:
            run_es256(server, args, store, prefix, work, report, ceilings)
            report["error_lines"] = server.error_lines()
            report["access_log_lines"] = (server.log_dir / "access.log").read_bytes().count(b"\n")
        if full or "bounds" in args.only:
            print("the stack-ceiling app under granian, with 0 and 1 Redis round trips", flush=True)
            bounds.measure_bounds(args, url, prefix + "bound:", report, ceilings)
        if args.peers and (full or "peer" in args.only):
            why = peers.unavailable()
            report["peer_absent"] = why
            if why is None:
                print(f"{peers.PEER}, 2 workers, ES256", flush=True)
                peers.run_peer(args, url, prefix + "peer:", work, report, ceilings)
            else:
                print(f"{peers.PEER}: not run: {why}", flush=True)
        if full:
            for alg in ("RS256", "EdDSA"):
                print(f"jwtauth serve, {alg}", flush=True)
                # A prefix of its own: a new process has not proven testclient's secret yet, so its
                # first logins count against 127.0.0.1, which the flood above locked out.
                with jwtauth_server(config, keys_dirs[alg], f"{prefix}{alg}:", work, url) as server:
                    env = fixed("POST", "grant_type=client_credentials", auth=True)
                    name = f"client_credentials {alg}"
                    report["jwtauth"][name] = ceilings.mark(measure(name, server, TOKENS, args, env))
                    report["error_lines"] += server.error_lines()
            print("Redis memory per refresh family and per session", flush=True)
            report["redis"] = memory.redis_per_family(store, prefix + "mem:")
            report["sessions"] = memory.redis_per_session(store, prefix + "ses:")
        ceilings.measure("last")


if __name__ == "__main__":
    raise SystemExit(main())
