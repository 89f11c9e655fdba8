"""`jwtauth serve` on granian: graceful SIGTERM, one-line startup errors, the metrics folder."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jwtauth.cli.serve import metrics_folder, remove_orphans
from tests.helpers import FIXTURES, ROOT

pytestmark = pytest.mark.e2e

BODY = b"grant_type=client_credentials"


def _request_head() -> bytes:
    auth = base64.b64encode(b"testclient:testpassword").decode()
    return (
        f"POST /api/v1/tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode()


def test_sigterm_lets_an_in_flight_request_finish(serve: Callable[..., Any]) -> None:
    with serve(workers=1) as server:
        port = int(server.base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            # Half a request: the worker has accepted it and waits for the rest of the body.
            conn.sendall(_request_head() + BODY[:5])
            time.sleep(0.3)
            os.killpg(server.proc.pid, signal.SIGTERM)
            time.sleep(0.3)
            # The listener is closed by now: nobody new gets in...
            with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2) as late:
                late.sendall(_request_head() + BODY)
                if not late.recv(1):
                    raise ConnectionResetError("closed without an answer")
            # ...but the request already in flight is answered in full.
            conn.sendall(BODY[5:])
            answer = b""
            while b'"access_token"' not in answer:
                chunk = conn.recv(65536)
                assert chunk, answer
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert server.proc.wait(timeout=25) == 0
    output = server.output()
    assert "Traceback" not in output and " ERROR " not in output and "WARNING" not in output
    assert '"endpoint":"token","grant":"client_credentials"' in output


def _serve(port: int, keys_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jwtauth", "serve", "--config", str(FIXTURES), "--port", str(port), *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        env={**os.environ, "JWTAUTH_KEYS_DIR": str(keys_dir), "TMPDIR": str(keys_dir.parent)},
    )


def test_a_busy_port_is_one_line_and_exit_2(keys_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve(port, keys_dir)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("jwtauth: ")]
    assert errors == [f"jwtauth: cannot serve on 127.0.0.1:{port}: Address already in use (os error 98)"]
    assert "Traceback" not in result.stderr and "backtrace" not in result.stderr.lower()
    assert not list(keys_dir.parent.glob("jwtauth-metrics-*"))  # the metrics folder went too


def test_a_port_another_server_shares_is_refused_too(keys_dir: Path) -> None:
    # granian listens with SO_REUSEPORT, which would let a second server in beside the first
    # and take part of its connections: this socket is such a first server.
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve(port, keys_dir)
    assert result.returncode == 2, result.stderr
    assert f"jwtauth: cannot serve on 127.0.0.1:{port}: Address already in use" in result.stderr


def test_an_ipv6_address_is_named_in_brackets() -> None:
    from jwtauth.cli.serve import _address

    assert _address("::", 8000) == "[::]:8000" and _address("127.0.0.1", 8000) == "127.0.0.1:8000"


def test_bad_thread_count_is_one_line(keys_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWTAUTH_THREADS", "lots")
    result = _serve(1, keys_dir)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last == "jwtauth: JWTAUTH_THREADS must be a number from 1 to 64, not 'lots'"


def test_metrics_folder_is_set_for_workers_and_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/somewhere/else")
    with metrics_folder() as folder:
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == folder and Path(folder).is_dir()
        (Path(folder) / "counter_1.db").write_bytes(b"x")
    assert not Path(folder).exists()
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == "/somewhere/else"


def test_folders_of_killed_servers_are_removed_at_the_next_start(tmp_path: Path) -> None:
    dead_pid = subprocess.Popen(["true"])  # its pid is free once it has been waited for
    dead_pid.wait()
    orphan = tmp_path / f"jwtauth-metrics-{dead_pid.pid}-abc"
    live = tmp_path / f"jwtauth-metrics-{os.getpid()}-def"
    other = tmp_path / "jwtauth-metrics-notapid-x"
    for folder in (orphan, live, other):
        folder.mkdir()
        (folder / "counter_1.db").write_bytes(b"x")
    remove_orphans(tmp_path)
    assert not orphan.exists() and live.exists() and other.exists()
