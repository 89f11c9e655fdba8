"""Tests for jwtauth.oidc.claims and the users table: sub, standard claims, scope release."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jwtauth.accounts.hashing import hash_secret
from jwtauth.config.reader import ConfigError
from jwtauth.config.settings import load_settings
from jwtauth.oidc.claims import ClaimError, parse_claim_option, released, supported, valid_subject
from tests.helpers import FIXTURES

HASH = hash_secret("s3cret-pass", log_n=10)
FULL = {
    "name": "Ann Example",
    "given_name": "Ann",
    "email": "ann@example.com",
    "email_verified": True,
    "phone_number": "+1 555 0100",
    "locale": "en-GB",
    "address": {"locality": "Springfield", "country": "US"},
}


def users_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(f'[[users]]\nusername = "ann"\npassword_hash = "{HASH}"\n{body}', encoding="utf-8")
    return path


def test_demo_user_has_a_stable_sub_and_the_issues_claims() -> None:
    user = load_settings(FIXTURES, env={}).users[0]
    assert user.subject == user.sub != user.username
    assert user.claims == {"name": "Test User", "email": "testuser@example.com", "email_verified": True}


def test_claims_are_read_with_their_types(tmp_path: Path) -> None:
    body = (
        'sub = "u-1"\nname = "Ann Example"\nemail_verified = false\nupdated_at = 1700000000\n'
        'address = { locality = "Springfield" }\n'
    )
    user = load_settings(users_file(tmp_path, body), env={}).users[0]
    assert user.subject == "u-1"
    assert user.claims == {
        "name": "Ann Example",
        "email_verified": False,
        "updated_at": 1700000000,
        "address": {"locality": "Springfield"},
    }


def test_a_user_without_sub_keeps_the_username_as_subject(tmp_path: Path) -> None:
    assert load_settings(users_file(tmp_path, ""), env={}).users[0].subject == "ann"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('email_verified = "yes"\n', "users[0].email_verified: email_verified must be true or false"),
        ("name = 3\n", "users[0].name: name must be a string"),
        ('address = { planet = "Mars" }\n', "users[0].address: address.planet"),
        ("updated_at = -1\n", "users[0].updated_at"),
        ('sub = "has space"\n', "users[0].sub: must be 1-255 printable ASCII"),
        (f'sub = "{"x" * 256}"\n', "users[0].sub"),
        ('nickname_typo = "a"\n', "users[0].nickname_typo: unknown key"),
    ],
)
def test_bad_claims_name_the_key(tmp_path: Path, body: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(users_file(tmp_path, body), env={})
    assert problem in str(info.value)


def test_two_users_may_not_share_a_sub(tmp_path: Path) -> None:
    path = users_file(
        tmp_path, f'sub = "same"\n[[users]]\nusername = "bob"\npassword_hash = "{HASH}"\nsub = "same"\n'
    )
    with pytest.raises(ConfigError, match=r"users\[1\]\.sub: duplicate 'same'"):
        load_settings(path, env={})


def test_a_sub_may_not_equal_another_users_username_subject(tmp_path: Path) -> None:
    # "ann" has no sub, so her subject is "ann": nobody else may take it.
    path = users_file(tmp_path, f'[[users]]\nusername = "bob"\npassword_hash = "{HASH}"\nsub = "ann"\n')
    with pytest.raises(ConfigError, match="duplicate 'ann'"):
        load_settings(path, env={})


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (["openid"], {}),
        (["openid", "email"], {"email": "ann@example.com", "email_verified": True}),
        (["openid", "profile"], {"name": "Ann Example", "given_name": "Ann", "locale": "en-GB"}),
        (["openid", "phone", "address"], {"phone_number": "+1 555 0100", "address": FULL["address"]}),
        (["read", "write"], {}),
    ],
)
def test_scope_releases_only_its_claims(scope: list[str], expected: dict[str, Any]) -> None:
    assert released(FULL, scope) == expected  # Core §5.4


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("name=Ann Example", ("name", "Ann Example")),
        ("email_verified=true", ("email_verified", True)),
        ("updated_at=17", ("updated_at", 17)),
        ("address.country=US", ("address", {"country": "US"})),
        ("nickname=a=b", ("nickname", "a=b")),
    ],
)
def test_claim_options(option: str, expected: tuple[str, Any]) -> None:
    assert parse_claim_option(option) == expected


@pytest.mark.parametrize(
    "option", ["name", "=x", "email_verified=yes", "updated_at=soon", "sub=x", "role=admin"]
)
def test_bad_claim_options(option: str) -> None:
    with pytest.raises(ClaimError):
        parse_claim_option(option)


def test_subjects_and_supported_claims() -> None:
    assert valid_subject("5f0c1d2e-8a4b") and not valid_subject("") and not valid_subject("é")
    names = supported(["openid", "email"])
    assert "sub" in names and "email_verified" in names and "name" not in names
