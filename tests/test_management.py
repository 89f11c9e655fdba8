"""The management listener of `jwtauth serve` (--metrics-port / [metrics] port): choosing and binding it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from jwtauth.cli import main as cli
from jwtauth.cli import management
from jwtauth.config.settings import load_settings
from tests.helpers import FIXTURES, ROOT
from tests.support import free_port


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, keys_dir: Path) -> dict[str, Any]:
    """Record what `serve` would run instead of running it."""
    for name in ("JWTAUTH_REDIS_URL", "JWTAUTH_ISSUER", "JWTAUTH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JWTAUTH_KEYS_DIR", str(keys_dir))
    seen: dict[str, Any] = {}
    monkeypatch.setattr("jwtauth.cli.serve.run", lambda factory, **kwargs: seen.update(kwargs))
    return seen


def test_no_management_listener_unless_asked(served: dict[str, Any]) -> None:
    assert cli.main(["serve", "--config", str(FIXTURES)]) == 0
    assert served["metrics_port"] is None


def test_the_flag_and_the_setting_choose_the_port(served: dict[str, Any], tmp_path: Path) -> None:
    assert cli.main(["serve", "--config", str(FIXTURES), "--metrics-port", "9100"]) == 0
    assert served["metrics_port"] == 9100
    config = tmp_path / "settings.toml"
    config.write_text("[metrics]\nport = 9200\n")
    assert cli.main(["serve", "--config", str(config)]) == 0
    assert served["metrics_port"] == 9200
    assert cli.main(["serve", "--config", str(config), "--metrics-port", "9300"]) == 0
    assert served["metrics_port"] == 9300  # the flag wins


def test_the_public_port_is_refused(served: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--config", str(FIXTURES), "--port", "8000", "--metrics-port", "8000"]) == 2
    assert "--metrics-port 8000 is the public port" in capsys.readouterr().err
    assert not served


@pytest.mark.parametrize("value", ["0", "70000", "'9100'"])
def test_a_bad_port_setting_names_the_key(tmp_path: Path, value: str) -> None:
    config = tmp_path / "settings.toml"
    config.write_text(f"[metrics]\nport = {value}\n")
    with pytest.raises(Exception, match=r"settings.toml: metrics.port: must be"):
        load_settings(config, env={})


@pytest.mark.process  # listening sockets on loopback
def test_a_taken_port_raises_at_bind() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            management.bind("127.0.0.1", taken.getsockname()[1])


@pytest.mark.process
def test_the_listener_ends_with_a_killed_master(keys_dir: Path) -> None:
    # SIGKILL of the master alone (no group signal): the management process notices and exits,
    # so no orphan keeps the port.
    port, metrics = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jwtauth", "serve", "--config", str(FIXTURES), "--port", str(port),
         "--metrics-port", str(metrics)],
        cwd=ROOT, env={**os.environ, "JWTAUTH_KEYS_DIR": str(keys_dir)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{metrics}/readyz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            pytest.fail("the management listener never answered")
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{metrics}/healthz", timeout=0.5)
            except requests.RequestException:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the management listener outlived its master")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
