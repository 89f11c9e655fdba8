"""`clients remove`, `clients rotate-secret`, `users passwd`, `users remove`: in place, comments kept."""

from __future__ import annotations

import io
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jwtauth.accounts.clients import ClientRegistry
from jwtauth.accounts.hashing import SecretChecker
from jwtauth.accounts.users import UserDirectory
from jwtauth.cli import main as cli
from jwtauth.config.reader import ConfigError
from jwtauth.config.settings import load_settings, parse_settings
from jwtauth.errors import InvalidClient
from tests.helpers import cheap_hash

SETTINGS = f"""# Operator's header comment: must survive every edit.
issuer = "https://auth.example.com"  # trailing comment

[[clients]]  # the reporting job
id = "reports"
secret_hash = "{cheap_hash("reportsecret")}"
grant_types = ["client_credentials"]  # keep me
scopes = ["read"]

[[clients]]
# the batch importer, going away
id = "importer"
secret_hash = "{cheap_hash("importsecret")}"
grant_types = ["client_credentials"]

[[clients]]
id = "spa"
public = true
grant_types = ["authorization_code"]
redirect_uris = ["https://spa.example.com/cb"]

[[users]]
username = "alice"  # Alice in accounting
password_hash = "{cheap_hash("alicepassword")}"

[[users]]
username = "bob"
password_hash = "{cheap_hash("bobpassword")}"
"""
CHECK = SecretChecker()


@pytest.fixture
def path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("JWTAUTH_CONFIG", raising=False)
    target = tmp_path / "settings.toml"
    target.write_text(SETTINGS)
    return target


def run(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str = "") -> tuple[int, str, str]:
    old, sys.stdin = sys.stdin, io.StringIO(stdin)
    try:
        status = cli.main(list(argv))
    finally:
        sys.stdin = old
    out, err = capsys.readouterr()
    return status, out, err


def comments(text: str) -> list[str]:
    return [line[line.index("#") :] for line in text.splitlines() if "#" in line]


def test_clients_remove_keeps_everything_else(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "clients", "remove", "importer", "--config", str(path))
    assert status == 0 and "jwtauth revoke --client importer" in err
    text = path.read_text()
    assert [c.client_id for c in load_settings(path, env={}).clients] == ["reports", "spa"]
    kept = [c for c in comments(SETTINGS) if "importer" not in c]
    assert comments(text) == kept  # every comment outside the removed table, in order
    assert "importsecret" not in text and 'id = "importer"' not in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("clients", "remove", "nobody"), "no client 'nobody'; nothing was changed"),
        (("clients", "rotate-secret", "spa"), "client 'spa' is public: it has no secret to rotate"),
        (("users", "remove", "carol"), "no user 'carol'; nothing was changed"),
    ],
)
def test_a_refused_edit_changes_nothing(
    path: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    status, _, err = run(capsys, *argv, "--config", str(path))
    assert status == 2 and err.strip().splitlines()[-1] == f"jwtauth: {path}: {message}"
    assert path.read_text() == SETTINGS


def test_rotate_secret_keeps_the_old_one_for_the_overlap(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(
        capsys, "clients", "rotate-secret", "reports", "--overlap", "3600", "--config", str(path)
    )
    assert status == 0 and "the old secret keeps working until" in err
    new_secret = out.split("client_secret: ")[1].strip()
    assert comments(path.read_text()) == comments(SETTINGS)
    table = tomllib.loads(path.read_text())["clients"][0]
    until = table["previous_secret_not_after"]
    assert isinstance(until, datetime) and until.tzinfo is not None
    assert abs(until.timestamp() - datetime.now(UTC).timestamp() - 3600) < 60
    clients = load_settings(path, env={}).clients
    now = [until.timestamp() - 10]
    registry = ClientRegistry(clients, CHECK, clock=lambda: now[0])
    for secret in (new_secret, "reportsecret"):  # both during the rotation
        assert (
            registry.authenticate(None, {"client_id": "reports", "client_secret": secret}).client_id
            == "reports"
        )
    now[0] = until.timestamp()
    with pytest.raises(InvalidClient):
        registry.authenticate(None, {"client_id": "reports", "client_secret": "reportsecret"})
    assert registry.authenticate(None, {"client_id": "reports", "client_secret": new_secret})
    # A second rotation ends the first: only the latest secret and its predecessor remain.
    assert run(capsys, "clients", "rotate-secret", "reports", "--overlap", "0", "--config", str(path))[0] == 0
    assert "previous_secret_hash" not in tomllib.loads(path.read_text())["clients"][0]


def test_users_passwd_and_remove(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, _ = run(
        capsys, "users", "passwd", "alice", "--stdin", "--config", str(path), stdin="n3w-passw0rd\n"
    )
    assert status == 0
    users = UserDirectory(load_settings(path, env={}).users, CHECK)
    assert users.authenticate("alice", "n3w-passw0rd") and not users.authenticate("alice", "alicepassword")
    assert comments(path.read_text()) == comments(SETTINGS)
    assert run(capsys, "users", "passwd", "alice", "--stdin", "--config", str(path), stdin="short\n")[0] == 2
    assert run(capsys, "users", "remove", "bob", "--config", str(path))[0] == 0
    assert [u.username for u in load_settings(path, env={}).users] == ["alice"]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            f'previous_secret_hash = "{cheap_hash("x")}"',
            "previous_secret_hash: needs previous_secret_not_after",
        ),
        (
            "previous_secret_not_after = 2030-01-01T00:00:00Z",
            "previous_secret_not_after: needs previous_secret_hash",
        ),
        (
            f'previous_secret_hash = "{cheap_hash("x")}"\nprevious_secret_not_after = 2030-01-01T00:00:00',
            "previous_secret_not_after: must be a date and time with an offset",
        ),
    ],
)
def test_a_bad_rotation_record_is_refused_at_load(lines: str, message: str) -> None:
    text = SETTINGS.replace('scopes = ["read"]\n', f'scopes = ["read"]\n{lines}\n', 1)
    with pytest.raises(ConfigError, match=f"clients\\[0\\].{message}"):
        parse_settings(tomllib.loads(text), "settings.toml", {})
