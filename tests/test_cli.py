"""Tests for the jwtauth command (serve's refusals, hash-secret); `keys` is tested elsewhere."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from jwtauth.accounts.hashing import SecretChecker, parse_hash
from jwtauth.cli import main as cli
from jwtauth.cli.console import OperatorError
from jwtauth.config.settings import load_settings
from jwtauth.keys import KeyRing
from tests.helpers import FIXTURES, ROOT, basic, write_pepper
from tests.support import free_port
from tests.support import run_cli as run


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """Assert an operator error: exit 2, no traceback, the message one `jwtauth: ` line on stderr.

    Log records (timestamped) may come before it; the message itself is a single line.
    """
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    messages = [line for line in result.stderr.splitlines() if line.startswith("jwtauth: ")]
    assert len(messages) == 1, result.stderr
    assert result.stderr.rstrip().endswith(messages[0])
    return messages[0]


def main_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run main() in-process; assert exit 2 and return its one-line message."""
    assert cli.main(list(argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("jwtauth: "), err
    return err[-1]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, keys_dir: Path) -> dict[str, str]:
    """A clean environment for in-process main(): demo config, a key, no Redis URL."""
    for name in ("JWTAUTH_REDIS_URL", "JWTAUTH_ISSUER", "JWTAUTH_REDIS_PREFIX", "JWTAUTH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JWTAUTH_KEYS_DIR", str(keys_dir))
    return {"JWTAUTH_KEYS_DIR": str(keys_dir)}


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace the WSGI server: record what `serve` would run instead of running it."""
    seen: dict[str, Any] = {}

    def fake_run(factory: Callable[[], Any], *, host: str, port: int, workers: int, **more: Any) -> None:
        seen.update(factory=factory, host=host, port=port, workers=workers, **more)

    monkeypatch.setattr("jwtauth.cli.serve.run", fake_run)
    return seen


# --- hash-secret -------------------------------------------------------------------------------


@pytest.mark.process
def test_hash_secret_stdin_makes_a_verifiable_hash() -> None:
    result = run("hash-secret", "--stdin", stdin="s3cret: with spaces é\n")
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert parse_hash(line)[:3] == (15, 8, 1)
    assert "s3cret" not in result.stdout + result.stderr
    checker = SecretChecker()
    assert checker.check(line, "s3cret: with spaces é")
    assert not checker.check(line, "s3cret: with spaces é\n")


def test_hash_secret_strips_crlf(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("pw\r\n"))
    monkeypatch.setattr("jwtauth.cli.main.hash_secret", lambda secret: f"hashed<{secret}>")
    assert cli.main(["hash-secret", "--stdin"]) == 0
    assert capsys.readouterr().out.strip() == "hashed<pw>"


@pytest.mark.process
def test_hash_secret_refuses_an_empty_secret() -> None:
    assert "empty secret" in one_line_error(run("hash-secret", "--stdin", stdin="\n"))


@pytest.mark.process
def test_hash_secret_reads_a_pipe_without_stdin_flag() -> None:
    result = run("hash-secret", stdin="piped\n")
    assert result.returncode == 0 and result.stdout.startswith("scrypt$ln=15,")


# --- serve refuses clearly ----------------------------------------------------------------------


@pytest.mark.process
def test_serve_two_workers_without_redis_is_refused(keys_dir: Path) -> None:
    result = run(
        "serve",
        "--config",
        str(FIXTURES),
        "--workers",
        "2",
        "--port",
        str(free_port()),
        env={"JWTAUTH_KEYS_DIR": str(keys_dir)},
    )
    line = one_line_error(result)
    assert "JWTAUTH_REDIS_URL" in line and "one worker" in line


@pytest.mark.process
def test_serve_without_keys_says_make_keygen(tmp_path: Path) -> None:
    empty = tmp_path / "keys"
    empty.mkdir()
    result = run(
        "serve", "--config", str(FIXTURES), "--port", str(free_port()), env={"JWTAUTH_KEYS_DIR": str(empty)}
    )
    assert "make keygen" in one_line_error(result)
    assert not list(empty.iterdir())  # never invents an ephemeral key


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:6379", "unsupported scheme 'http'"),
        ("localhost:6379", "unsupported scheme"),
        ("redis://admin:hunter2", "cannot parse"),
    ],
)
def test_serve_bad_redis_url_is_one_line(
    env: dict[str, str],
    served: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    expected: str,
) -> None:
    monkeypatch.setenv("JWTAUTH_REDIS_URL", url)
    line = main_error(capsys, "serve", "--config", str(FIXTURES))
    assert line.startswith("jwtauth: JWTAUTH_REDIS_URL: ") and expected in line
    assert "hunter2" not in line
    assert not served


def test_serve_bad_config_is_one_line(
    tmp_path: Path, env: dict[str, str], served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[lifetimes]\naccess_token = 'soon'\n")
    line = main_error(capsys, "serve", "--config", str(bad))
    assert line.startswith(f"jwtauth: {bad}: lifetimes.access_token: must be int")
    assert not served


def test_serve_starts_while_the_cluster_is_down(
    env: dict[str, str], served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 6, fault 1: Redis down at start is not a reason to refuse client_credentials.
    monkeypatch.setenv("JWTAUTH_REDIS_URL", f"redis+cluster://127.0.0.1:{free_port()}")
    assert cli.main(["serve", "--config", str(FIXTURES), "--workers", "2"]) == 0
    http = testing.TestClient(served["factory"]())
    ready = http.simulate_get("/readyz")  # still in the load balancer: it can sign
    assert ready.status_code == 200 and ready.json["checks"]["store"] == "unavailable"
    token = http.simulate_post("/api/v1/tokens", body="grant_type=client_credentials", headers=basic())
    assert token.status_code == 200, token.text
    login = http.simulate_post(
        "/api/v1/tokens",
        body="grant_type=password&username=testuser@example.com&password=testpassword",
        headers=basic(),
    )
    assert login.status_code == 503 and login.json["error"] == "temporarily_unavailable"


@pytest.mark.parametrize("workers", ["-1", "two"])
def test_serve_bad_worker_count(env: dict[str, str], served: dict[str, Any], workers: str) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", "--config", str(FIXTURES), "--workers", workers])
    assert info.value.code == 2 and not served


# --- serve's wiring, without a real server ----------------------------------------------------


def test_serve_defaults_to_one_embedded_worker(env: dict[str, str], served: dict[str, Any]) -> None:
    assert cli.main(["serve", "--config", str(FIXTURES), "--port", "8123"]) == 0
    assert (served["host"], served["port"], served["workers"]) == ("127.0.0.1", 8123, 1)
    http = testing.TestClient(served["factory"]())
    meta = http.simulate_get("/.well-known/oauth-authorization-server").json
    assert meta["issuer"] == "http://127.0.0.1:8123"
    result = http.simulate_post("/api/v1/tokens", body="grant_type=client_credentials", headers=basic())
    assert result.status_code == 200, result.text


@pytest.mark.parametrize(
    ("host", "issuer"),
    [
        ("0.0.0.0", "http://127.0.0.1:8000"),  # noqa: S104
        ("::", "http://127.0.0.1:8000"),
        ("::1", "http://[::1]:8000"),
        ("localhost", "http://localhost:8000"),
    ],
)
def test_serve_issuer_follows_host_and_port(
    env: dict[str, str], served: dict[str, Any], host: str, issuer: str
) -> None:
    assert cli.main(["serve", "--config", str(FIXTURES), "--host", host]) == 0
    http = testing.TestClient(served["factory"]())
    assert http.simulate_get("/.well-known/oauth-authorization-server").json["issuer"] == issuer


def test_serve_configured_issuer_wins(
    env: dict[str, str], served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JWTAUTH_ISSUER", "https://auth.example.com")
    assert cli.main(["serve", "--config", str(FIXTURES)]) == 0
    http = testing.TestClient(served["factory"]())
    assert (
        http.simulate_get("/.well-known/oauth-authorization-server").json["issuer"]
        == "https://auth.example.com"
    )


def test_serve_with_redis_defaults_to_one_worker_per_core(
    env: dict[str, str], served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JWTAUTH_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setattr("os.cpu_count", lambda: 3)
    assert cli.main(["serve", "--config", str(FIXTURES)]) == 0
    assert served["workers"] == 3


@pytest.mark.process
def test_no_command_is_a_usage_error() -> None:
    result = run()
    assert result.returncode == 2 and "usage: jwtauth" in result.stderr


@pytest.mark.process
@pytest.mark.parametrize("url", ["redis://127.0.0.1:{port}/0", "redis+cluster://127.0.0.1:{port}"])
def test_revoke_with_the_store_down_is_one_line_and_revokes_nothing(url: str, keys_dir: Path) -> None:
    # The cluster client's "no node answers" error is not a RedisError: it must not be a traceback.
    env = {
        "PATH": "/usr/bin:/bin",
        "JWTAUTH_REDIS_URL": url.format(port=free_port()),
        "JWTAUTH_KEYS_DIR": str(keys_dir),
    }
    result = subprocess.run(
        [sys.executable, "-m", "jwtauth", "revoke", "--subject", "testuser@example.com",
         "--config", str(FIXTURES)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60,
    )
    assert result.returncode == 2
    assert "the store is unreachable" in result.stderr and "nothing was revoked" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_takes_the_folders_pepper_and_invents_one_only_for_the_embedded_store(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    ring = KeyRing(bare, retire_after=960)
    embedded = load_settings(None, env={})
    shared = dataclasses.replace(embedded, redis_url="redis://127.0.0.1:6379/0", keys_dir=bare)
    assert cli._serving_pepper(embedded, ring) is not cli._serving_pepper(embedded, ring)  # one per process
    with pytest.raises(OperatorError, match="jwtauth keys ensure"):
        cli._serving_pepper(shared, ring)
    write_pepper(bare)
    ring = KeyRing(bare, retire_after=960)
    assert cli._serving_pepper(shared, ring) is ring.pepper
