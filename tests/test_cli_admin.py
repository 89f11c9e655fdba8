"""Tests for the operator commands (jwtauth/cli/accounts.py, remote.py) and the settings-file editor."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import stat
import sys
import threading
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from jwtauth.accounts.hashing import SecretChecker, hash_secret
from jwtauth.app import create_app
from jwtauth.cli import main as cli
from jwtauth.cli.config_edit import append_table, toml_string
from jwtauth.config.reader import ConfigError
from jwtauth.config.settings import load_settings
from jwtauth.keys import KeyRing
from tests.dpopkit import DPoPKey
from tests.helpers import FIXTURES, basic
from tests.support import Server
from tests.support import run_cli as jwtauth_cli

CHECK = SecretChecker()


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    """Return a copy of the demo fixtures, comments and all, that the tests may edit."""
    path = tmp_path / "settings.toml"
    path.write_bytes(FIXTURES.read_bytes())
    path.chmod(0o640)
    return path


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JWTAUTH_CONFIG", "JWTAUTH_URL", "JWTAUTH_CLIENT_SECRET", "JWTAUTH_ISSUER"):
        monkeypatch.delenv(name, raising=False)


def run_main(
    capsys: pytest.CaptureFixture[str], *argv: str, stdin: str | None = None
) -> tuple[int, str, str]:
    """Run main() in-process (stdin from a string); return (status, stdout, stderr)."""
    old = sys.stdin
    sys.stdin = io.StringIO(stdin or "")
    try:
        status = cli.main(list(argv))
    finally:
        sys.stdin = old
    out, err = capsys.readouterr()
    return status, out, err


def hash_of(secret: str) -> str:
    """Return a cheap scrypt hash (tests only)."""
    return hash_secret(secret, log_n=10)


def printed_secret(out: str) -> str:
    (line,) = [line for line in out.splitlines() if line.startswith("client_secret: ")]
    return line.removeprefix("client_secret: ")


# --- config_edit ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["plain", 'quote " and \\ backslash', "tab\tnew\nline", "\x00\x1f\x7f", "ünï ☃ 𝄞", ""]
)
def test_toml_string_round_trips(text: str) -> None:
    assert tomllib.loads(f"v = {toml_string(text)}")["v"] == text


def test_append_keeps_every_byte_and_validates(settings_file: Path) -> None:
    before = settings_file.read_text()
    settings = append_table(settings_file, "users", {"username": "bob", "password_hash": hash_of("pw")})
    after = settings_file.read_text()
    assert after.startswith(before)  # comments, order and spacing of the operator's file survive
    assert "# password: testpassword" in after
    assert [u.username for u in settings.users] == ["testuser@example.com", "bob"]
    assert stat.S_IMODE(settings_file.stat().st_mode) == 0o640  # permissions kept


def test_invalid_result_leaves_the_file_untouched(settings_file: Path) -> None:
    before = settings_file.read_bytes()
    bad = {"id": "web", "secret_hash": hash_of("s"), "grant_types": ["authorization_code"]}
    with pytest.raises(ConfigError, match=r"clients\[1\]\.redirect_uris: is required"):
        append_table(settings_file, "clients", bad)
    assert settings_file.read_bytes() == before
    assert sorted(p.name for p in settings_file.parent.iterdir()) == ["settings.toml"]  # no temp left


def test_a_broken_file_is_not_edited(settings_file: Path) -> None:
    settings_file.write_text("issuer = [unclosed\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        append_table(settings_file, "users", {"username": "bob", "password_hash": hash_of("pw")})
    assert settings_file.read_text() == "issuer = [unclosed\n"


def test_a_missing_file_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "new.toml"
    append_table(path, "users", {"username": "bob", "password_hash": hash_of("pw")})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [u.username for u in load_settings(path, env={}).users] == ["bob"]


def test_concurrent_appends_are_all_kept(settings_file: Path) -> None:
    names = [f"user{i}" for i in range(6)]
    digest = hash_of("pw")
    threads = [
        threading.Thread(
            target=append_table, args=(settings_file, "users", {"username": n, "password_hash": digest})
        )
        for n in names
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    users = {u.username for u in load_settings(settings_file, env={}).users}
    assert users == {"testuser@example.com", *names}


# --- clients add ---------------------------------------------------------------------------


def test_clients_add_prints_the_secret_once_and_stores_its_hash(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    settings_file: Path,
    keys_dir: Path,
    store: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    status, out, err = run_main(
        capsys,
        "clients",
        "add",
        "reports",
        "--config",
        str(settings_file),
        "--scope",
        "read",
        "--audience",
        "https://api.example.com",
    )
    assert status == 0, err
    secret = printed_secret(out)
    assert len(secret) >= 43  # 256 random bits
    assert out.count(secret) == 1 and secret not in err and secret not in caplog.text
    assert secret not in settings_file.read_text()
    settings = load_settings(settings_file, env={})
    client = next(c for c in settings.clients if c.client_id == "reports")
    assert CHECK.check(client.secret_hash, secret)
    assert client.grant_types == {"client_credentials"} and client.default_scope == ("read",)
    # The new client works at once with a server built from the edited file.
    app = testing.TestClient(create_app(settings, KeyRing(keys_dir, retire_after=960), store))
    result = app.simulate_post(
        "/api/v1/tokens", body="grant_type=client_credentials", headers=basic("reports", secret)
    )
    assert result.status_code == 200 and result.json["scope"] == "read"


def test_clients_add_require_dpop(
    capsys: pytest.CaptureFixture[str], settings_file: Path, keys_dir: Path, store: Any
) -> None:
    argv = ["clients", "add", "bound", "--require-dpop", "--scope", "read", "--config", str(settings_file)]
    status, out, err = run_main(capsys, *argv)
    assert status == 0, err
    assert "require_dpop = true" in settings_file.read_text()
    settings = load_settings(settings_file, env={})
    client = next(c for c in settings.clients if c.client_id == "bound")
    assert client.require_dpop and not settings.clients[0].require_dpop
    # The server built from the edited file refuses it a bearer token and binds its tokens.
    app = testing.TestClient(create_app(settings, KeyRing(keys_dir, retire_after=960), store))
    headers = basic("bound", printed_secret(out))
    refused = app.simulate_post("/api/v1/tokens", body="grant_type=client_credentials", headers=headers)
    assert refused.status_code == 400 and refused.json["error"] == "invalid_request"
    proof = DPoPKey().proof(htu=settings.issuer + "/api/v1/tokens")
    bound = app.simulate_post(
        "/api/v1/tokens", body="grant_type=client_credentials", headers={**headers, "DPoP": proof}
    )
    assert bound.status_code == 200 and bound.json["token_type"] == "DPoP"


def test_clients_add_refuses_a_duplicate(capsys: pytest.CaptureFixture[str], settings_file: Path) -> None:
    before = settings_file.read_bytes()
    status, out, err = run_main(capsys, "clients", "add", "testclient", "--config", str(settings_file))
    assert status == 2 and out == ""
    assert err.strip() == f"jwtauth: {settings_file}: client 'testclient' already exists; nothing was changed"
    assert settings_file.read_bytes() == before


def test_clients_add_public_client(capsys: pytest.CaptureFixture[str], settings_file: Path) -> None:
    status, out, _ = run_main(
        capsys,
        "clients",
        "add",
        "spa",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1:5173/callback",
        "--scope",
        "read",
        "--config",
        str(settings_file),
    )
    assert status == 0 and "client_secret" not in out
    client = load_settings(settings_file, env={}).clients[-1]
    assert client.public and client.require_pkce
    assert client.grant_types == {"authorization_code", "refresh_token"}


def test_clients_add_reports_an_invalid_client_in_one_line(
    capsys: pytest.CaptureFixture[str], settings_file: Path
) -> None:
    before = settings_file.read_bytes()
    status, out, err = run_main(
        capsys, "clients", "add", "web", "--grant", "authorization_code", "--config", str(settings_file)
    )
    assert status == 2 and out == ""  # no secret printed for a client that was not added
    assert "redirect_uris: is required" in err and len(err.strip().splitlines()) == 1
    assert settings_file.read_bytes() == before


def test_clients_add_needs_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_main(capsys, "clients", "add", "x")
    assert status == 2 and "--config FILE" in err


# --- users add -----------------------------------------------------------------------------


def test_users_add_from_stdin(capsys: pytest.CaptureFixture[str], settings_file: Path) -> None:
    status, out, err = run_main(
        capsys,
        "users",
        "add",
        "alice@example.com",
        "--stdin",
        "--config",
        str(settings_file),
        stdin="s3cret-pass\n",
    )
    assert status == 0, err
    assert "s3cret-pass" not in out + err + settings_file.read_text()
    user = load_settings(settings_file, env={}).users[-1]
    assert user.username == "alice@example.com" and CHECK.check(user.password_hash, "s3cret-pass")


def test_users_add_prompts_twice(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, settings_file: Path
) -> None:
    answers = iter(["first-password", "other-password"])
    monkeypatch.setattr("jwtauth.cli.console.getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr("jwtauth.cli.console.stdin_is_a_terminal", lambda: True)
    status, _, err = run_main(capsys, "users", "add", "bob", "--config", str(settings_file))
    assert status == 2 and "the two entries differ" in err


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("testuser@example.com", "long-enough", "user 'testuser@example.com' already exists"),
        ("new@example.com", "short", "shorter than 8 characters"),
        ("new@example.com", "", "empty password"),
    ],
)
def test_users_add_refusals(
    capsys: pytest.CaptureFixture[str], settings_file: Path, username: str, password: str, message: str
) -> None:
    before = settings_file.read_bytes()
    status, _, err = run_main(
        capsys, "users", "add", username, "--stdin", "--config", str(settings_file), stdin=password + "\n"
    )
    assert status == 2 and message in err
    assert settings_file.read_bytes() == before


# --- decode offline, help ------------------------------------------------------------------


def test_decode_without_verifying(capsys: pytest.CaptureFixture[str], client: testing.TestClient) -> None:
    token = client.simulate_post(
        "/api/v1/tokens", body="grant_type=client_credentials", headers=basic()
    ).json["access_token"]
    status, out, _ = run_main(capsys, "decode", token, "--no-verify")
    assert status == 0
    assert '"typ": "at+jwt"' in out and '"sub": "testclient"' in out
    assert "verified: not checked" in out


@pytest.mark.parametrize("garbage", ["abc", "a.b.c", "e30.W10.x"])
def test_decode_refuses_what_is_not_a_jwt(capsys: pytest.CaptureFixture[str], garbage: str) -> None:
    status, out, err = run_main(capsys, "decode", garbage, "--no-verify")
    assert status == 2 and "not a JWT" in err and "Traceback" not in err
    assert out == ""  # refused before printing anything


def test_token_refuses_plain_http_beyond_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_main(
        capsys, "token", "--client-id", "x", "--url", "http://auth.example.com", "--stdin", stdin="s\n"
    )
    assert status == 2 and "use https" in err


@pytest.mark.parametrize(
    "command", [["clients", "add"], ["users", "add"], ["token"], ["decode"], ["clients"], ["users"]]
)
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([*command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: jwtauth " + " ".join(command)) and len(out.splitlines()) > 4


# --- token and decode against a real server ------------------------------------------------


@pytest.mark.e2e
def test_token_and_decode_against_a_running_server(
    serve: Callable[..., contextlib.AbstractContextManager[Server]], settings_file: Path
) -> None:
    added = jwtauth_cli("clients", "add", "cron", "--scope", "read", "--config", str(settings_file))
    assert added.returncode == 0, added.stderr
    secret = printed_secret(added.stdout)
    with serve(config=settings_file) as server:
        url = ["--url", server.base]
        got = jwtauth_cli("token", "--client-id", "cron", *url, env={"JWTAUTH_CLIENT_SECRET": secret})
        assert got.returncode == 0, got.stderr
        token = got.stdout.strip()
        assert token.count(".") == 2 and secret not in got.stdout + got.stderr

        full = jwtauth_cli("token", "--client-id", "cron", "--json", "--stdin", *url, stdin=secret + "\n")
        assert json.loads(full.stdout)["scope"] == "read"

        ok = jwtauth_cli("decode", token, *url, "--audience", "https://api.example.com")
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "verified: yes" in ok.stdout and '"client_id": "cron"' in ok.stdout

        head, body, sig = token.split(".")
        tampered = jwtauth_cli("decode", f"{head}.{body}.{sig[:-4]}AAAA", *url)
        assert tampered.returncode == 1 and "verified: NO, bad signature" in tampered.stdout

        from_stdin = jwtauth_cli("decode", "-", *url, "--audience", "https://other.example", stdin=token)
        assert from_stdin.returncode == 1 and "wrong audience" in from_stdin.stdout

        wrong = jwtauth_cli("token", "--client-id", "cron", *url, env={"JWTAUTH_CLIENT_SECRET": "nope"})
        assert wrong.returncode == 2
        assert wrong.stderr.strip().endswith("refused: invalid_client (client authentication failed)")
    down = jwtauth_cli("decode", token, *url)
    assert down.returncode == 2 and "is jwtauth serve running there?" in down.stderr
    assert "Traceback" not in down.stderr


def test_users_add_assigns_a_sub_and_claims(capsys: pytest.CaptureFixture[str], settings_file: Path) -> None:
    args = ["users", "add", "ann", "--stdin", "--config", str(settings_file)]
    claims = ["--claim", "name=Ann Example", "--claim", "email_verified=true"]
    claims += ["--claim", "address.country=US"]
    status, out, err = run_main(capsys, *args, *claims, stdin="s3cret-pass\n")
    assert status == 0, err
    bob_args = ["users", "add", "bob", "--stdin", "--config", str(settings_file)]
    status, _, err = run_main(capsys, *bob_args, stdin="s3cret-pass\n")
    assert status == 0, err
    ann, bob = load_settings(settings_file, env={}).users[-2:]
    # OpenID Connect Core §2: a stable subject, not the username, never the same for two users.
    assert ann.sub and ann.sub != "ann" and ann.sub != bob.sub and ann.sub in out
    assert ann.claims == {"name": "Ann Example", "email_verified": True, "address": {"country": "US"}}


@pytest.mark.parametrize(
    ("claim", "message"), [("role=admin", "not a standard claim"), ("name", "KEY=VALUE")]
)
def test_users_add_refuses_a_bad_claim_before_asking(
    capsys: pytest.CaptureFixture[str], settings_file: Path, claim: str, message: str
) -> None:
    before = settings_file.read_bytes()
    args = ["users", "add", "ann", "--stdin", "--claim", claim, "--config", str(settings_file)]
    status, _, err = run_main(capsys, *args, stdin="")
    assert status == 2 and message in err and "empty password" not in err
    assert settings_file.read_bytes() == before


def test_clients_add_first_party(capsys: pytest.CaptureFixture[str], settings_file: Path) -> None:
    uri = "https://mine.example.com/cb"
    argv = ["clients", "add", "mine", "--grant", "authorization_code", "--redirect-uri", uri, "--first-party"]
    status, _, _ = run_main(capsys, *argv, "--config", str(settings_file))
    assert status == 0 and load_settings(settings_file, env={}).clients[-1].first_party


def test_clients_add_logout_flags(capsys: pytest.CaptureFixture[str], settings_file: Path) -> None:
    argv = ["clients", "add", "rp", "--grant", "authorization_code", "--redirect-uri", "https://rp.example.com/cb"]
    argv += ["--post-logout-redirect-uri", "https://rp.example.com/bye"]
    argv += ["--backchannel-logout-uri", "https://rp.example.com/bc", "--config", str(settings_file)]
    argv += ["--allowed-origin", "https://rp.example.com"]
    status, _, _ = run_main(capsys, *argv)
    client = load_settings(settings_file, env={}).clients[-1]
    assert status == 0 and client.post_logout_redirect_uris == ("https://rp.example.com/bye",)
    assert client.backchannel_logout_uri == "https://rp.example.com/bc"
    assert client.allowed_origins == ("https://rp.example.com",)
