"""make bench PEERS=1: node-oidc-provider measured in the same run as jwtauth, on the same box.

The peer (bench/peer/provider.mjs, the npm package pinned by bench/peer/package-lock.json and
installed with `npm ci` on first use) runs as a cluster of 2 workers like `jwtauth serve
--workers 2`, signs ES256 JWT access tokens for one resource server, keeps its grants in the
run's Redis under a prefix of its own (deleted with the run's keys), and rotates refresh tokens
with reuse detection. Its client is testclient/testpassword by client_secret_basic, as jwtauth's.

Two scenarios, each in rounds alternating with the stack ceiling like jwtauth's ratio targets:
client_credentials, and refresh_token with rotation. The peer's refresh tokens are minted
through its own models before each round (`provider.mjs mint`: a Grant and a RefreshToken
each, what its authorization_code grant stores after a sign-in), one family per connection
and then some, rotated one connection at a time as jwtauth's families are (bench/wrk.lua).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from bench.harness import ROOT, Ceilings, Result, Server, fixed, measure, rounds, wrk
from bench.serving import HOST, free_port, stop

PEER_DIR = ROOT / "bench" / "peer"
PEER = "node-oidc-provider"
TOKEN = "/token"  # its token endpoint
DISCOVERY = "/.well-known/openid-configuration"
CC_NAME = f"{PEER} client_credentials"
REFRESH_NAME = f"{PEER} refresh_token"
# jwtauth's scenario each peer scenario is shown beside.
BESIDE = {CC_NAME: "client_credentials ES256", REFRESH_NAME: "refresh_token"}
# A warning of the provider's, about Node 20 (it asks for 22): not an error of the run.
HARMLESS = ("Unsupported runtime",)


def unavailable() -> str | None:
    """Say why the peer cannot run on this machine (None: it can)."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (make system-deps installs Node)"
    return None


def node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()


def pinned() -> dict[str, str]:
    """The peer's npm packages and versions, from bench/peer/package.json."""
    dependencies: dict[str, str] = json.loads((PEER_DIR / "package.json").read_text())["dependencies"]
    return dependencies


def install() -> None:
    """`npm ci` in bench/peer unless the lock file's packages are installed already."""
    marker = PEER_DIR / "node_modules" / ".installed"
    lock = PEER_DIR / "package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    print(f"  npm ci in {PEER_DIR.relative_to(ROOT)}", flush=True)
    argv = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    subprocess.run(argv, cwd=PEER_DIR, check=True, timeout=600)
    marker.touch()


def signing_jwk() -> str:
    """A fresh private P-256 JWK for the peer's ES256 signatures (JSON)."""
    return ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()))


def peer_env(jwk: str) -> dict[str, str]:
    # production: no development interactions, no development warnings on each request.
    return {**os.environ, "PEER_JWK": jwk, "NODE_ENV": "production"}


@contextlib.contextmanager
def peer_server(redis_url: str, prefix: str, env: dict[str, str]) -> Iterator[Server]:
    """Run the peer's 2-worker cluster on a free port; stop its process group afterwards."""
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="peer-"))
    argv = ["node", "provider.mjs", "serve", str(port), redis_url, prefix]
    with open(log_dir / "stderr.log", "wb") as err:
        # wrk's session, as for the other servers (bench/harness.py, above jwtauth_server).
        proc = subprocess.Popen(
            argv, cwd=PEER_DIR, env=env, stdout=subprocess.DEVNULL, stderr=err, process_group=0
        )
    try:
        _wait_ready(port, proc)
        yield Server(proc, port, log_dir, redis.Redis.from_url(redis_url))
    finally:
        stop(proc)


def _wait_ready(port: int, proc: subprocess.Popen[bytes], deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{PEER} exited early with {proc.returncode}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"http://{HOST}:{port}{DISCOVERY}", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{PEER} not ready in time")


def mint(count: int, redis_url: str, prefix: str, env: dict[str, str], path: Path) -> Path:
    """Write `count` refresh tokens of new grants, minted through the provider's own models."""
    argv = ["node", "provider.mjs", "mint", str(count), redis_url, prefix]
    out = subprocess.run(argv, cwd=PEER_DIR, env=env, capture_output=True, text=True, check=True, timeout=60)
    tokens = [line for line in out.stdout.splitlines() if line and " " not in line]
    if len(tokens) != count:
        raise RuntimeError(f"{PEER} minted {len(tokens)} refresh tokens of {count}: {out.stderr[-500:]}")
    path.write_text("".join(token + "\n" for token in tokens))
    return path


def error_lines(server: Server) -> list[str]:
    text = (server.log_dir / "stderr.log").read_text(errors="replace")
    return [line for line in text.splitlines() if line.strip() and not any(h in line for h in HARMLESS)]


def run_peer(
    args: argparse.Namespace,
    redis_url: str,
    prefix: str,
    work: Path,
    report: dict[str, Any],
    ceilings: Ceilings,
) -> None:
    """Measure the peer's client_credentials and refresh_token; record them in report["peer"]."""
    install()
    report["peer_versions"] = {"node": node_version(), **pinned()}
    env = peer_env(signing_jwk())
    results: dict[str, Result] = report["peer"]
    with peer_server(redis_url, prefix, env) as server:
        cc_env = fixed("POST", "grant_type=client_credentials", auth=True)
        wrk(server.base + TOKEN, args.warmup, args, cc_env)
        results[CC_NAME] = rounds(
            CC_NAME, lambda a: measure(CC_NAME, server, TOKEN, a, cc_env), ceilings, args
        )

        def families(tag: str) -> dict[str, str]:
            # More families than connections: wrk takes one token to check its script (wrk.lua).
            path = mint(2 * args.connections, redis_url, prefix, env, work / f"peer-refresh-{tag}.txt")
            return {**fixed("POST", auth=True), "BENCH_MODE": "refresh", "BENCH_FILE": str(path)}

        if args.warmup > 0:
            wrk(server.base + TOKEN, args.warmup, args, families("warmup"))
        counter = iter(range(1_000))
        results[REFRESH_NAME] = rounds(
            REFRESH_NAME,
            lambda a: measure(REFRESH_NAME, server, TOKEN, a, families(str(next(counter)))),
            ceilings,
            args,
        )
        report["peer_errors"] = error_lines(server)
