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
    A port another test took between free_port() and the bind is refused by serve (exit 2,
    "Address already in use"): the start is then tried again on another port.
    """
    full_env = {**os.environ, "JWTAUTH_KEYS_DIR": str(keys_dir), **(env or {})}
    command = ["--config", str(config), "--workers", str(workers), *args]
    for attempt in range(3):
        server = _start(command, full_env, log_dir)
        try:
            if _ready(server, wait_for, retry_busy=attempt < 2):
                yield server
                return
        finally:
            _stop(server.proc)
    raise AssertionError("unreachable: the last attempt raises")


def _start(command: list[str], env: dict[str, str], log_dir: Path) -> Server:
    port = free_port()
    log = log_dir / f"serve-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jwtauth", "serve", "--port", str(port), *command],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
    return Server(proc, f"http://127.0.0.1:{port}", log)


def _ready(server: Server, wait_for: str, *, retry_busy: bool) -> bool:
    """Wait for the server; False if it lost its port to another test and may be started again."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            if retry_busy and server.proc.returncode == 2 and "Address already in use" in server.output():
                return False
            raise RuntimeError(f"jwtauth serve exited with {server.proc.returncode}:\n{server.output()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(server.base + wait_for, timeout=1).status_code == 200:
                return True
        time.sleep(0.1)
    raise RuntimeError(f"jwtauth serve did not become ready:\n{server.output()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
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
