"""Tests for jwtauth.accounts.users: password checks, the same cost for unknown users."""

from __future__ import annotations

import pytest

from jwtauth.accounts.hashing import SecretChecker, hash_secret
from jwtauth.accounts.users import UserDirectory
from jwtauth.config.clients import User
from jwtauth.config.settings import load_settings
from tests.helpers import FIXTURES, ScryptCounter

LOW = 10






@pytest.fixture
def directory() -> UserDirectory:
    users = [
        User("alice@example.com", hash_secret("wonderland", log_n=LOW)),
        User("bob", hash_secret("builder", log_n=LOW)),
    ]
    return UserDirectory(users, SecretChecker(dummy_log_n=LOW))


def test_demo_user() -> None:
    settings = load_settings(FIXTURES, env={})
    users = UserDirectory(settings.users, SecretChecker())
    user = users.authenticate("testuser@example.com", "testpassword")
    assert user is not None and user.username == "testuser@example.com"


def test_right_password(directory: UserDirectory) -> None:
    user = directory.authenticate("alice@example.com", "wonderland")
    assert user is not None and user.username == "alice@example.com"


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice@example.com", "builder"),  # another user's password
        ("alice@example.com", ""),
        ("Alice@example.com", "wonderland"),  # usernames are exact, not case-folded
        (" alice@example.com", "wonderland"),
        ("nobody", "wonderland"),
        ("", ""),
    ],
)
def test_wrong_credentials(directory: UserDirectory, username: str, password: str) -> None:
    assert directory.authenticate(username, password) is None


def test_unknown_user_costs_one_scrypt_like_a_wrong_password(
    directory: UserDirectory, scrypt_calls: ScryptCounter
) -> None:
    directory.authenticate("warm", "up")  # the dummy hash is made once per process
    for username in ("alice@example.com", "nobody"):
        scrypt_calls.calls = 0
        assert directory.authenticate(username, "wrong") is None
        assert scrypt_calls.calls == 1, username


def test_second_login_skips_scrypt(directory: UserDirectory, scrypt_calls: ScryptCounter) -> None:
    assert directory.authenticate("bob", "builder") is not None
    scrypt_calls.calls = 0
    assert directory.authenticate("bob", "builder") is not None
    assert scrypt_calls.calls == 0
