"""Tests for jwtauth.accounts.hashing: scrypt hashes, and the checker's fast path for proven secrets."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from jwtauth.accounts import hashing
from jwtauth.accounts.hashing import HashFormatError, SecretChecker, hash_secret, parse_hash
from jwtauth.config.settings import load_settings
from tests.helpers import FIXTURES, ScryptCounter

LOW = 10  # scrypt N=1024: about a millisecond, enough to test the logic






@pytest.fixture
def checker() -> SecretChecker:
    return SecretChecker(dummy_log_n=LOW)


def test_hash_format_and_round_trip(checker: SecretChecker) -> None:
    stored = hash_secret("s3cret", log_n=LOW)
    scheme, params, salt, digest = stored.split("$")
    assert (scheme, params) == ("scrypt", "ln=10,r=8,p=1")
    log_n, r, p, raw_salt, raw_digest = parse_hash(stored)
    assert (log_n, r, p, len(raw_salt), len(raw_digest)) == (10, 8, 1, 16, 32)
    assert "=" not in salt + digest  # unpadded base64url
    assert checker.check(stored, "s3cret")


def test_default_cost_is_ln15() -> None:
    assert hashing.DEFAULT_LOG_N == 15
    settings = load_settings(FIXTURES, env={})
    stored = settings.clients[0].secret_hash
    assert stored is not None and parse_hash(stored)[:3] == (15, 8, 1)
    assert SecretChecker().check(stored, "testpassword")


def test_salt_is_random() -> None:
    assert hash_secret("same", log_n=LOW) != hash_secret("same", log_n=LOW)


def test_explicit_salt_is_deterministic() -> None:
    salt = b"0123456789abcdef"
    assert hash_secret("x", log_n=LOW, salt=salt) == hash_secret("x", log_n=LOW, salt=salt)


# Not "s3cret\x00": PBKDF2 (inside scrypt) zero-pads the HMAC key, so trailing NULs are
# equivalent; the HTTP layer refuses NUL in credentials (see test_clients.py).
@pytest.mark.parametrize("wrong", ["s3cre", "s3cret ", "S3cret", "", "s3cret\x01", "\x00s3cret"])
def test_wrong_secret(checker: SecretChecker, wrong: str) -> None:
    assert not checker.check(hash_secret("s3cret", log_n=LOW), wrong)


def test_non_ascii_secret_round_trip(checker: SecretChecker) -> None:
    stored = hash_secret("pässwörd ✓", log_n=LOW)
    assert checker.check(stored, "pässwörd ✓")
    assert not checker.check(stored, "password ✓")


GOOD = hash_secret("x", log_n=LOW)
_, GOOD_PARAMS, GOOD_SALT, GOOD_DIGEST = GOOD.split("$")

MALFORMED = {
    "empty": "",
    "plaintext": "testpassword",
    "other scheme": GOOD.replace("scrypt$", "bcrypt$", 1),
    "too few parts": f"scrypt${GOOD_PARAMS}${GOOD_SALT}",
    "too many parts": GOOD + "$extra",
    "missing parameter": f"scrypt$ln=10,r=8${GOOD_SALT}${GOOD_DIGEST}",
    "parameter without value": f"scrypt$ln,r=8,p=1${GOOD_SALT}${GOOD_DIGEST}",
    "non-numeric parameter": f"scrypt$ln=ten,r=8,p=1${GOOD_SALT}${GOOD_DIGEST}",
    "ln too small": f"scrypt$ln=4,r=8,p=1${GOOD_SALT}${GOOD_DIGEST}",
    "ln too large": f"scrypt$ln=40,r=8,p=1${GOOD_SALT}${GOOD_DIGEST}",
    "r out of range": f"scrypt$ln=10,r=0,p=1${GOOD_SALT}${GOOD_DIGEST}",
    "p out of range": f"scrypt$ln=10,r=8,p=99${GOOD_SALT}${GOOD_DIGEST}",
    "short salt": f"scrypt${GOOD_PARAMS}$AAAA${GOOD_DIGEST}",
    "short digest": f"scrypt${GOOD_PARAMS}${GOOD_SALT}${GOOD_DIGEST[:20]}",
    "bad base64": f"scrypt${GOOD_PARAMS}${GOOD_SALT}${GOOD_DIGEST[:-1]}",
    "non-ascii": f"scrypt${GOOD_PARAMS}${GOOD_SALT}é${GOOD_DIGEST}",
}


@pytest.mark.parametrize("stored", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_hash_is_refused(checker: SecretChecker, stored: str) -> None:
    with pytest.raises(HashFormatError):
        parse_hash(stored)
    with pytest.raises(HashFormatError):
        checker.check(stored, "x")


# --- the fast path ---------------------------------------------------------------------------


def test_second_check_of_the_right_secret_skips_scrypt(
    checker: SecretChecker, scrypt_calls: ScryptCounter
) -> None:
    stored = hash_secret("s3cret", log_n=LOW)
    scrypt_calls.calls = 0
    assert checker.check(stored, "s3cret")
    assert scrypt_calls.calls == 1
    for _ in range(100):
        assert checker.check(stored, "s3cret")
    assert scrypt_calls.calls == 1


def test_a_wrong_secret_always_costs_scrypt(checker: SecretChecker, scrypt_calls: ScryptCounter) -> None:
    stored = hash_secret("s3cret", log_n=LOW)
    assert checker.check(stored, "s3cret")
    scrypt_calls.calls = 0
    for _ in range(3):
        assert not checker.check(stored, "guess")
    assert scrypt_calls.calls == 3  # no shortcut for guessing, even after the memo exists
    assert checker.check(stored, "s3cret")  # and the memo survives failed guesses
    assert scrypt_calls.calls == 3


def test_wrong_secrets_are_never_memoised(checker: SecretChecker, scrypt_calls: ScryptCounter) -> None:
    stored = hash_secret("s3cret", log_n=LOW)
    assert not checker.check(stored, "guess")
    assert not checker.check(stored, "guess")
    assert checker._proven == {}


def test_unknown_account_costs_a_scrypt_call(checker: SecretChecker, scrypt_calls: ScryptCounter) -> None:
    assert not checker.check(None, "warm-up")  # builds the dummy hash once
    scrypt_calls.calls = 0
    for _ in range(3):
        assert not checker.check(None, "testpassword")
    assert scrypt_calls.calls == 3


def test_unknown_account_costs_as_much_as_a_wrong_secret() -> None:
    # Same scrypt parameters for the dummy and a real hash: the same work per failure.
    checker = SecretChecker()
    checker.check(None, "warm-up")
    assert [parse_hash(h)[:3] for h in checker._dummies.values()] == [(hashing.DEFAULT_LOG_N, 8, 1)]


def test_memo_holds_an_hmac_never_the_secret(checker: SecretChecker) -> None:
    secret = "correct horse battery staple"
    stored = hash_secret(secret, log_n=LOW)
    assert checker.check(stored, secret)
    assert list(checker._proven) == [stored]
    memo = checker._proven[stored]
    assert memo == hmac.new(checker._key, secret.encode(), hashlib.sha256).digest()
    raw = secret.encode()
    state = [v for v in vars(checker).values() if isinstance(v, bytes | str)]
    state += [v for v in checker._proven.values()]
    assert all(raw not in v if isinstance(v, bytes) else secret not in v for v in state)


def test_memo_key_is_per_process_random() -> None:
    # Two checkers (two processes) derive different memos for the same proven secret.
    stored = hash_secret("s3cret", log_n=LOW)
    a, b = SecretChecker(dummy_log_n=LOW), SecretChecker(dummy_log_n=LOW)
    assert a.check(stored, "s3cret") and b.check(stored, "s3cret")
    assert a._proven[stored] != b._proven[stored]


def test_memo_is_per_hash(checker: SecretChecker, scrypt_calls: ScryptCounter) -> None:
    one, two = hash_secret("shared", log_n=LOW), hash_secret("shared", log_n=LOW)
    assert checker.check(one, "shared")
    scrypt_calls.calls = 0
    assert checker.check(two, "shared")  # another account: proven on its own, with scrypt
    assert scrypt_calls.calls == 1
    assert not checker.check(one, "other")
