"""Serving-layer shoot-out: bench/ceiling_app.py under several WSGI servers, driven by wrk.

Every server gets 2 workers and a free port on 127.0.0.1; wrk runs ``-t2 -c16 -d10s --latency``
with bench/post_token.lua. Reported per server: requests/s, p50, p99, errors (non-2xx plus
socket errors), CPU ms per request of the server's process tree (utime+stime from /proc) and
of wrk, and how long the server took to exit after SIGTERM.

    .venv/bin/python -m bench.serving                      # every layer available
    .venv/bin/python -m bench.serving --only granian-bt1 --repeat 3

bjoern and meinheld are not project dependencies; they are used from ``--alt-venv``
(default /tmp/altserve) when that venv has them, and skipped otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "post_token.lua"
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
PATH = "/api/v1/tokens/"
CLK_TCK = os.sysconf("SC_CLK_TCK")
APP = "bench.ceiling_app:app"


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    server_cpu_ms_per_req: float
    wrk_cpu_ms_per_req: float
    stop_s: float
    other_cores: float


def gunicorn(*extra: str) -> list[str]:
    return [
        str(VENV_BIN / "gunicorn"),
        "-w",
        "2",
        "--no-control-socket",
        "--log-level",
        "warning",
        *extra,
        APP,
    ]


def granian(*extra: str) -> list[str]:
    return [
        str(VENV_BIN / "granian"),
        "--interface",
        "wsgi",
        "--workers",
        "2",
        "--no-ws",
        "--log-level",
        "warning",
        *extra,
        APP,
    ]


def layers(alt_venv: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (argv with {port} placeholders, how the address is passed)."""
    out: dict[str, tuple[list[str], str]] = {
        "gunicorn-sync": (gunicorn("-k", "sync"), "gunicorn"),
        "gunicorn-gthread-t2": (
            gunicorn("-k", "gthread", "--threads", "2", "--keep-alive", "5"),
            "gunicorn",
        ),
        "gunicorn-gthread-t4": (
            gunicorn("-k", "gthread", "--threads", "4", "--keep-alive", "5"),
            "gunicorn",
        ),
        "gunicorn-gthread-t8": (
            gunicorn("-k", "gthread", "--threads", "8", "--keep-alive", "5"),
            "gunicorn",
        ),
        "granian-default": (granian(), "granian"),
        "granian-bt1": (granian("--blocking-threads", "1"), "granian"),
        "granian-bt2": (granian("--blocking-threads", "2"), "granian"),
        "granian-bt4": (granian("--blocking-threads", "4"), "granian"),
        "granian-bt1-st": (granian("--blocking-threads", "1", "--runtime-mode", "st"), "granian"),
        "granian-bt2-st": (granian("--blocking-threads", "2", "--runtime-mode", "st"), "granian"),
        "granian-bt1-bp8": (granian("--blocking-threads", "1", "--backpressure", "8"), "granian"),
    }
    alt_py = alt_venv / "bin" / "python"
    for mod in ("bjoern", "meinheld"):
        probe = (
            subprocess.run([str(alt_py), "-c", f"import {mod}"], capture_output=True, check=False, timeout=30)
            if alt_py.exists()
            else None
        )
        if probe is not None and probe.returncode == 0:
            out[mod] = ([str(alt_py), "-m", "bench.alt_serve", mod], "alt")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def with_address(argv: list[str], kind: str, port: int) -> list[str]:
    if kind == "gunicorn":
        return [*argv[:-1], "-b", f"{HOST}:{port}", argv[-1]]
    if kind == "granian":
        return [*argv[:-1], "--host", HOST, "--port", str(port), argv[-1]]
    return [*argv, HOST, str(port)]


def post_token(port: int, timeout: float = 2.0) -> int:
    req = urllib.request.Request(
        f"http://{HOST}:{port}{PATH}",
        data=b"grant_type=client_credentials",
        method="POST",
        headers={
            "Authorization": "Basic dGVzdGNsaWVudDp0ZXN0cGFzc3dvcmQ=",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body = json.loads(resp.read())
        assert body["token_type"] == "Bearer", body
        return int(resp.status)


def wait_ready(port: int, proc: subprocess.Popen[bytes], deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        with contextlib.suppress(OSError):
            if post_token(port) == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("server not ready in time")


def tree_cpu_ticks(root: int) -> int:
    """utime+stime of root and all its descendants (threads are included per process)."""
    stats: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        # fields[0] is state (field 3); ppid is field 4, utime 14, stime 15.
        stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo.extend(p for p, (ppid, _) in stats.items() if ppid == pid and p not in tree)
    return sum(stats[p][1] for p in tree if p in stats)


def busy_ticks() -> int:
    """CPU ticks the whole machine spent not idle (/proc/stat: all minus idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields[:8]) - fields[3] - fields[4]


def run_wrk(port: int, duration: int, connections: int) -> tuple[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "5s",
            "--latency",
            "-s",
            str(LUA),
            f"http://{HOST}:{port}{PATH}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 30,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out.stdout, cpu


def parse_wrk(text: str) -> dict[str, float]:
    vals: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("BENCH "):
            for k, v in (kv.split("=") for kv in line.split()[1:]):
                vals[k] = float(v)
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    vals["rps"] = float(m.group(1)) if m else vals["requests"] / (vals["duration_us"] / 1e6)
    return vals


def stop(proc: subprocess.Popen[bytes], grace: float = 15.0) -> float:
    """SIGTERM the server's process group, wait for it, SIGKILL the group if it hangs."""
    start = time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
        return float("inf")
    elapsed = time.monotonic() - start
    with contextlib.suppress(ProcessLookupError):  # stragglers outliving the master
        os.killpg(proc.pid, signal.SIGKILL)
    return elapsed


def bench_one(name: str, argv: list[str], kind: str, args: argparse.Namespace) -> Result:
    port = free_port()
    env = {**os.environ, "CEILING_ALG": args.alg, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        with_address(argv, kind, port),
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(port, proc)
        run_wrk(port, args.warmup, args.connections)
        cpu0, busy0, t0 = tree_cpu_ticks(proc.pid), busy_ticks(), time.monotonic()
        text, wrk_cpu = run_wrk(port, args.duration, args.connections)
        cpu1, busy1, t1 = tree_cpu_ticks(proc.pid), busy_ticks(), time.monotonic()
    finally:
        stop_s = stop(proc)
    vals = parse_wrk(text)
    n = max(int(vals["requests"]), 1)
    errors = sum(int(vals[k]) for k in ("non2xx", "connect", "read", "write", "timeout"))
    return Result(
        name=name,
        rps=vals["rps"],
        p50_ms=vals["p50_us"] / 1000,
        p99_ms=vals["p99_us"] / 1000,
        requests=n,
        errors=errors,
        server_cpu_ms_per_req=(cpu1 - cpu0) / CLK_TCK * 1000 / n,
        wrk_cpu_ms_per_req=wrk_cpu * 1000 / n,
        stop_s=stop_s,
        # CPU that neither the server nor wrk used: other load on the box (noise), in cores.
        other_cores=((busy1 - busy0 - (cpu1 - cpu0)) / CLK_TCK - wrk_cpu) / (t1 - t0),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", help="layer names to run (default: all)")
    parser.add_argument("--alg", default="ES256", choices=("ES256", "RS256", "EdDSA"))
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=1, help="rounds over all layers; median reported")
    parser.add_argument("--alt-venv", type=Path, default=Path("/tmp/altserve"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    table = layers(args.alt_venv)
    names = args.only or list(table)
    runs: dict[str, list[Result]] = {name: [] for name in names}
    # Round-robin over the layers, so that load from other processes on the box spreads
    # over all of them instead of hitting one layer's every run.
    for _ in range(args.repeat):
        for name in names:
            argv, kind = table[name]
            r = bench_one(name, argv, kind, args)
            runs[name].append(r)
            print(f"# {name}: {r.rps:.0f} req/s, other load {r.other_cores:.2f}", flush=True)
    print(
        "| layer | req/s median (min-max) | p50 ms | p99 ms | errors | server CPU ms/req "
        "| req/s per server core | wrk CPU ms/req | SIGTERM→exit s | other load (cores) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        rs = sorted(runs[name], key=lambda x: x.rps)
        r = rs[len(rs) // 2]
        cpu = statistics.median(x.server_cpu_ms_per_req for x in rs)
        print(
            f"| {name} | {r.rps:.0f} ({rs[0].rps:.0f}-{rs[-1].rps:.0f}) | {r.p50_ms:.2f} "
            f"| {r.p99_ms:.2f} | {sum(x.errors for x in rs)} | {cpu:.3f} | {1000 / cpu:.0f} "
            f"| {r.wrk_cpu_ms_per_req:.3f} | {max(x.stop_s for x in rs):.2f} "
            f"| {statistics.median(x.other_cores for x in rs):.2f} |",
            flush=True,
        )
    if args.json:
        payload = {
            "alg": args.alg,
            "repeat": args.repeat,
            "runs": {k: [asdict(x) for x in v] for k, v in runs.items()},
        }
        args.json.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
