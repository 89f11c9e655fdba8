"""Tests for jwtauth.config: the demo fixtures, every validation message, environment overrides."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jwtauth.accounts.hashing import hash_secret, parse_hash
from jwtauth.config.reader import ConfigError
from jwtauth.config.settings import Settings, load_settings, parse_settings, with_issuer
from tests.helpers import FIXTURES, ROOT

HASH = hash_secret("s3cret", log_n=10)

CLIENT = f"""
[[clients]]
id = "app"
secret_hash = "{HASH}"
"""


def write(tmp_path: Path, text: str, name: str = "jwtauth.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path, env=env or {})
    return str(info.value)


# --- the demo fixtures --------------------------------------------------------------------


def test_demo_fixtures_load() -> None:
    settings = load_settings(FIXTURES, env={})
    assert settings.source == str(FIXTURES)
    assert settings.issuer == ""  # left unset so that it follows --host/--port
    (client,) = settings.clients
    assert client.client_id == "testclient" and not client.public
    assert client.redirect_uris == ("https://www.example.com",)
    assert client.grant_types == {
        "authorization_code",
        "implicit",
        "password",
        "client_credentials",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
    }
    assert client.scopes == {"read", "write", "openid", "profile", "email", "offline_access"}
    assert client.default_scope == ("read", "write")
    assert client.audiences == ("https://api.example.com", "https://reports.example.com")
    assert client.secret_hash is not None and parse_hash(client.secret_hash)[0] == 15
    (user,) = settings.users
    assert user.username == "testuser@example.com"
    assert settings.access_token_ttl == 900 and settings.code_ttl == 60
    assert settings.refresh_idle_ttl == 14 * 86400 and settings.refresh_absolute_ttl == 30 * 86400
    assert settings.audience == "https://api.example.com"
    assert settings.redis_url is None and settings.redis_prefix == "jwtauth:"


def test_no_file_gives_defaults() -> None:
    settings = load_settings(None, env={})
    assert settings.clients == () and settings.users == ()
    assert settings.keys_dir == Path("keys") and settings.signing_algorithm == "ES256"


def test_issuer_is_normalised_and_is_the_default_audience(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, 'issuer = "https://auth.example.com/"\n'), env={})
    assert settings.issuer == "https://auth.example.com"
    assert settings.audience == "https://auth.example.com"


def test_with_issuer_fills_only_a_missing_issuer() -> None:
    assert with_issuer(Settings(issuer=""), "http://127.0.0.1:8000/").issuer == "http://127.0.0.1:8000"
    assert with_issuer(Settings(issuer="https://a.example"), "http://x").issuer == "https://a.example"


def test_public_client_requires_pkce(tmp_path: Path) -> None:
    text = """
[[clients]]
id = "spa"
public = true
grant_types = ["authorization_code", "refresh_token"]
redirect_uris = ["https://spa.example.com/cb", "http://127.0.0.1:9000/cb", "com.example.app:/cb"]
"""
    (client,) = load_settings(write(tmp_path, text), env={}).clients
    assert client.public and client.require_pkce and client.secret_hash is None
    assert not client.allow_localhost  # RFC 8252 §8.3: opt-in only


def test_client_id_metadata_is_off_by_default_and_read_when_set(tmp_path: Path) -> None:
    assert not load_settings(write(tmp_path, ""), env={}).client_id_metadata.enabled
    text = """
[client_id_metadata]
enabled = true
allowed_hosts = ["claude.ai", "*.example.com"]
scopes = ["read"]
audiences = ["https://mcp.example.com/mcp"]
"""
    options = load_settings(write(tmp_path, text), env={}).client_id_metadata
    assert options.enabled and options.scopes == ("read",) and not options.allow_insecure_loopback
    assert options.host_allowed("claude.ai") and options.host_allowed("a.b.example.com")
    assert not options.host_allowed("example.com") and not options.host_allowed("claude.ai.evil.example")


def test_a_client_opts_in_to_localhost_redirects(tmp_path: Path) -> None:
    text = """
[[clients]]
id = "cli"
public = true
allow_localhost = true
grant_types = ["authorization_code"]
redirect_uris = ["http://localhost/callback"]
"""
    (client,) = load_settings(write(tmp_path, text), env={}).clients
    assert client.allow_localhost


# --- every validation error names file, dotted key and problem ------------------------------

BAD = {
    "unknown top-level key": ("isuer = 'https://a.example'\n", "isuer", "unknown key"),
    "unknown nested key": ("[lifetimes]\naccess = 5\n", "lifetimes.access", "unknown key"),
    "unknown client key": (CLIENT + "colour = 'red'\n", "clients[0].colour", "unknown key"),
    "wrong type": ("[lifetimes]\naccess_token = '900'\n", "lifetimes.access_token", "must be int"),
    "bool for int": ("[lifetimes]\naccess_token = true\n", "lifetimes.access_token", "must be int"),
    "out of range": ("[lifetimes]\naccess_token = 0\n", "lifetimes.access_token", "between 1 and"),
    "table expected": ("lifetimes = 5\n", "lifetimes", "must be a table"),
    "clients not an array": ("clients = 'x'\n", "clients", "array of tables"),
    "string list expected": (CLIENT + "scopes = 'read'\n", "clients[0].scopes", "list of strings"),
    "bad issuer": ("issuer = 'ftp://a.example'\n", "issuer", "http(s) URL"),
    "issuer with broken IPv6": ("issuer = 'https://[::1'\n", "issuer", "http(s) URL"),
    "issuer with query": ("issuer = 'https://a.example/?x=1'\n", "issuer", "without query"),
    "bad algorithm": ("[keys]\nalgorithm = 'HS256'\n", "keys.algorithm", "is not one of"),
    "documents without hosts": (
        "[client_id_metadata]\nenabled = true\n", "client_id_metadata.allowed_hosts", "name the hosts"
    ),
    "document host pattern": (
        "[client_id_metadata]\nallowed_hosts = ['*.Example.com/x']\n",
        "client_id_metadata.allowed_hosts",
        "lower-case host",
    ),
    "document scopes": (
        "[client_id_metadata]\nscopes = ['a b']\n", "client_id_metadata.scopes", "scope token"
    ),
    "insecure documents in production": (
        "issuer = 'https://auth.example.com'\n[client_id_metadata]\nallow_insecure_loopback = true\n",
        "client_id_metadata.allow_insecure_loopback",
        "development only",
    ),
    "relative redirect URI": (
        CLIENT + "redirect_uris = ['/callback']\n",
        "clients[0].redirect_uris",
        "not an absolute URI",
    ),
    "redirect URI without host": (
        CLIENT + "redirect_uris = ['https:///cb']\n",
        "clients[0].redirect_uris",
        "not an absolute URI",
    ),
    "fragment": (
        CLIENT + "redirect_uris = ['https://a.example/cb#x']\n",
        "clients[0].redirect_uris",
        "fragment",
    ),
    "empty fragment": (
        CLIENT + "redirect_uris = ['https://a.example/cb#']\n",
        "clients[0].redirect_uris",
        "fragment",
    ),
    "plain http": (
        CLIENT + "redirect_uris = ['http://app.example.com/cb']\n",
        "clients[0].redirect_uris",
        "plain http",
    ),
    "plain http look-alike": (
        CLIENT + "redirect_uris = ['http://localhost.evil.example/cb']\n",
        "clients[0].redirect_uris",
        "plain http",
    ),
    "broken IPv6 literal": (
        CLIENT + "redirect_uris = ['https://[::1/cb']\n",
        "clients[0].redirect_uris",
        "not an absolute URI",
    ),
    "code grant without redirect URI": (
        CLIENT + "grant_types = ['authorization_code']\n",
        "clients[0].redirect_uris",
        "is required",
    ),
    "bad scope token": (CLIENT + "scopes = ['read', 'a\"b']\n", "clients[0].scopes", "scope token"),
    "scope with a space": (CLIENT + "scopes = ['read write']\n", "clients[0].scopes", "scope token"),
    "empty scope": (CLIENT + "scopes = ['']\n", "clients[0].scopes", "scope token"),
    "default scope outside scopes": (
        CLIENT + "scopes = ['read']\ndefault_scope = 'read admin'\n",
        "clients[0].default_scope",
        "not within scopes",
    ),
    "duplicate client ids": (CLIENT + CLIENT, "clients[1].id", "duplicate 'app'"),
    "duplicate usernames": (
        f"[[users]]\nusername = 'u'\npassword_hash = '{HASH}'\n" * 2,
        "users[1].username",
        "duplicate 'u'",
    ),
    "public client with secret": (CLIENT + "public = true\n", "clients[0].secret_hash", "public client"),
    "confidential without secret": (
        "[[clients]]\nid = 'app'\n",
        "clients[0].secret_hash",
        "required for a confidential client",
    ),
    "public client_credentials": (
        "[[clients]]\nid = 'spa'\npublic = true\ngrant_types = ['client_credentials']\n",
        "clients[0].grant_types",
        "public client cannot",
    ),
    "unknown grant": (CLIENT + "grant_types = ['magic']\n", "clients[0].grant_types", "unknown grant"),
    "client id with colon": ("[[clients]]\nid = 'a:b'\n", "clients[0].id", "without ':'"),
    "missing client id": (f"[[clients]]\nsecret_hash = '{HASH}'\n", "clients[0].id", "is required"),
    "bad hash": (
        "[[clients]]\nid = 'app'\nsecret_hash = 'testpassword'\n",
        "clients[0].secret_hash",
        "scrypt",
    ),
    "bad hash parameters": (
        "[[clients]]\nid = 'app'\nsecret_hash = '" + HASH.replace("ln=10", "ln=40") + "'\n",
        "clients[0].secret_hash",
        "out of range",
    ),
    "bad password hash": (
        "[[users]]\nusername = 'u'\npassword_hash = 'plain'\n",
        "users[0].password_hash",
        "hash-secret",
    ),
    "jwks_max_age above publish_ahead": (
        "[keys]\njwks_max_age = 600\npublish_ahead = 300\n",
        "keys.jwks_max_age",
        "exceeds keys.publish_ahead",
    ),
    "refresh_idle above refresh_absolute": (
        "[lifetimes]\nrefresh_idle = 100\nrefresh_absolute = 50\n",
        "lifetimes.refresh_idle",
        "exceeds refresh_absolute",
    ),
    "refresh_grace out of range": (
        "[lifetimes]\nrefresh_grace = 61\n",
        "lifetimes.refresh_grace",
        "0 and 60",
    ),
}


@pytest.mark.parametrize(("text", "key", "problem"), list(BAD.values()), ids=list(BAD))
def test_every_error_names_file_key_and_problem(tmp_path: Path, text: str, key: str, problem: str) -> None:
    path = write(tmp_path, text)
    message = error_of(path)
    assert message.startswith(f"{path}: {key}: "), message
    assert problem in message
    assert "\n" not in message


def test_invalid_toml_reports_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "issuer = 'https://a.example'\n\n[keys\nalgorithm = 'ES256'\n")
    message = error_of(path)
    assert message.startswith(f"{path}: not valid TOML")
    assert "line 3" in message


def test_missing_file(tmp_path: Path) -> None:
    assert error_of(tmp_path / "nope.toml") == f"{tmp_path / 'nope.toml'}: file not found"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    assert error_of(tmp_path).startswith(f"{tmp_path}: cannot read")


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes("name = 'café'\n".encode("latin-1"))
    assert error_of(path) == f"{path}: not valid UTF-8"


def test_messages_never_contain_a_secret_hash_value_of_another_key(tmp_path: Path) -> None:
    # The problem is about `scopes`; the message must not dump the whole client table.
    message = error_of(write(tmp_path, CLIENT + "scopes = 5\n"))
    assert HASH not in message


# --- environment overrides -----------------------------------------------------------------


def test_env_overrides_the_file(tmp_path: Path) -> None:
    text = """
issuer = "https://file.example"
[keys]
dir = "file-keys"
[redis]
url = "redis://file:6379/0"
prefix = "file:"
"""
    env = {
        "JWTAUTH_ISSUER": "https://env.example/",
        "JWTAUTH_REDIS_URL": "redis://env:6379/1",
        "JWTAUTH_KEYS_DIR": str(tmp_path / "env-keys"),
        "JWTAUTH_REDIS_PREFIX": "env:",
    }
    settings = load_settings(write(tmp_path, text), env=env)
    assert settings.issuer == "https://env.example"
    assert settings.redis_url == "redis://env:6379/1"
    assert settings.keys_dir == tmp_path / "env-keys"
    assert settings.redis_prefix == "env:"


def test_file_values_apply_without_env(tmp_path: Path) -> None:
    text = """
issuer = "https://file.example"
[keys]
dir = "file-keys"
[redis]
url = "redis://file:6379/0"
prefix = "file:"
"""
    settings = load_settings(write(tmp_path, text), env={})
    assert settings.issuer == "https://file.example"
    assert settings.redis_url == "redis://file:6379/0"
    assert settings.keys_dir == Path("file-keys")
    assert settings.redis_prefix == "file:"


def test_empty_env_values_do_not_override(tmp_path: Path) -> None:
    path = write(tmp_path, "issuer = 'https://file.example'\n")
    settings = load_settings(path, env={"JWTAUTH_ISSUER": "", "JWTAUTH_REDIS_URL": ""})
    assert settings.issuer == "https://file.example" and settings.redis_url is None


def test_jwtauth_config_names_the_file() -> None:
    settings = load_settings(None, env={"JWTAUTH_CONFIG": str(FIXTURES)})
    assert settings.source == str(FIXTURES) and settings.clients[0].client_id == "testclient"


def test_explicit_path_wins_over_jwtauth_config(tmp_path: Path) -> None:
    path = write(tmp_path, "issuer = 'https://explicit.example'\n")
    settings = load_settings(path, env={"JWTAUTH_CONFIG": str(FIXTURES)})
    assert settings.issuer == "https://explicit.example" and settings.clients == ()


def test_bad_env_issuer_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings({}, "f.toml", {"JWTAUTH_ISSUER": "ftp://a.example"})
    assert str(info.value).startswith("JWTAUTH_ISSUER: 'ftp://a.example' must be an http(s) URL")


# --- jwtauth check-config ------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jwtauth", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


@pytest.mark.process
def test_check_config_accepts_the_fixtures() -> None:
    result = run_cli("check-config", str(FIXTURES))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{FIXTURES}: OK (1 clients, 1 users)"


@pytest.mark.parametrize(
    "text",
    ["[keys\n", CLIENT + "redirect_uris = ['http://app.example.com/cb']\n", "\xff"],
    ids=["invalid toml", "plain http redirect", "not utf-8"],
)
@pytest.mark.process
def test_check_config_fails_with_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(text.encode("latin-1") if text == "\xff" else text.encode())
    result = run_cli("check-config", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"jwtauth: {path}: "), result.stderr


@pytest.mark.process
def test_check_config_reads_jwtauth_config(tmp_path: Path) -> None:
    result = run_cli("check-config", env={"JWTAUTH_CONFIG": str(tmp_path / "missing.toml")})
    assert result.returncode == 2
    assert result.stderr.strip() == f"jwtauth: {tmp_path / 'missing.toml'}: file not found"


@pytest.mark.process
def test_check_config_without_a_file_is_refused() -> None:
    # Validating the built-in defaults would say OK about a file nobody named.
    result = run_cli("check-config")
    assert result.returncode == 2
    assert "needs a file" in result.stderr and "Traceback" not in result.stderr


def test_sessions_lifetime_and_first_party_clients(tmp_path: Path) -> None:
    client = CLIENT.replace('id = "app"', 'id = "app"\nfirst_party = true')
    settings = load_settings(write(tmp_path, "[sessions]\nlifetime = 3600\n" + client), env={})
    assert settings.session_ttl == 3600 and settings.clients[0].first_party
    assert load_settings(None, env={}).session_ttl == 10 * 3600
    assert "lifetime" in error_of(write(tmp_path, "[sessions]\nlifetime = 0\n" + CLIENT))


def test_logout_metadata_is_checked_like_redirect_uris(tmp_path: Path) -> None:
    fields = (
        'post_logout_redirect_uris = ["https://app.example.com/bye"]\n'
        'backchannel_logout_uri = "https://app.example.com/bc"\nbackchannel_logout_session_required = true'
    )
    client = load_settings(write(tmp_path, CLIENT + fields), env={}).clients[0]
    assert client.post_logout_redirect_uris == ("https://app.example.com/bye",)
    assert client.backchannel_logout_uri == "https://app.example.com/bc"
    assert client.backchannel_logout_session_required
    assert load_settings(FIXTURES, env={}).clients[0].post_logout_redirect_uris == (
        "https://www.example.com/logged-out",
    )
    for bad in (
        'post_logout_redirect_uris = ["https://app.example.com/bye#x"]',
        'post_logout_redirect_uris = ["http://app.example.com/bye"]',
        'backchannel_logout_uri = "com.example.app:/bc"',
    ):
        assert bad.split(" ")[0] in error_of(write(tmp_path, CLIENT + bad))


def test_allowed_origins_are_origins(tmp_path: Path) -> None:
    good = CLIENT + 'allowed_origins = ["https://app.example.com", "http://127.0.0.1:5173"]'
    assert load_settings(write(tmp_path, good), env={}).clients[0].allowed_origins == (
        "https://app.example.com",
        "http://127.0.0.1:5173",
    )
    for bad in ("https://app.example.com/", "https://app.example.com/path", "http://app.example.com", "*"):
        assert "allowed_origins" in error_of(write(tmp_path, CLIENT + f'allowed_origins = ["{bad}"]'))
