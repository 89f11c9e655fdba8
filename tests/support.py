"""Services the tests need: a real Redis (or a skip), free ports, a real `jwtauth serve`, the CLI."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import FIXTURES, ROOT

REDIS_URL = os.environ.get("JWTAUTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, reason: str) -> None:
    """Skip on a laptop that lacks a service; under CI=true a missing service is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must run everything, but: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    """Return a TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """A running `jwtauth serve` process."""

    def __init__(self, proc: subprocess.Popen[bytes], base: str, log: Path) -> None:
        self.proc, self.base, self.log = proc, base, log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def running_server(
    *,
    keys_dir: Path,
    config: Path = FIXTURES,
    workers: int = 1,
    env: dict[str, str] | None = None,
    log_dir: Path,
    wait_for: str = "/readyz",
    args: tuple[str, ...] = (),
) -> Iterator[Server]:
    """Start `jwtauth serve` on a free port, wait until ready, stop it gracefully afterwards.

    `wait_for="/healthz"` waits only for the process to answer (a test whose store is down).
    """
    port = free_port()
    log = log_dir / f"serve-{port}.log"
    full_env = {**os.environ, "JWTAUTH_KEYS_DIR": str(keys_dir), **(env or {})}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jwtauth",
                "serve",
                "--config",
                str(config),
                "--port",
                str(port),
                "--workers",
                str(workers),
                *args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=ROOT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    server = Server(proc, base, log)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"jwtauth serve exited with {proc.returncode}:\n{server.output()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(base + wait_for, timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"jwtauth serve did not become ready:\n{server.output()}")
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run `python -m jwtauth` in a clean environment (no JWTAUTH_* leaking in from the shell)."""
    return subprocess.run(
        [sys.executable, "-m", "jwtauth", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        input=stdin,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )
