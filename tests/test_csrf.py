"""Tests for jwtauth.web.csrf: bound to the browser secret, the exact parameters, and a deadline."""

from __future__ import annotations

import pytest

from jwtauth.web import csrf

NAMES = ("client_id", "redirect_uri", "scope", "state")
PARAMS = {"client_id": "testclient", "scope": "read write", "state": "xyz"}
NOW = 1_700_000_000.0


def test_a_token_checks_for_its_secret_and_parameters() -> None:
    secret = csrf.browser_secret(None)
    token = csrf.issue(secret, PARAMS, NAMES, now=NOW)
    assert csrf.check(secret, token, PARAMS, NAMES, now=NOW + csrf.TTL - 1)


@pytest.mark.parametrize(
    "changed",
    [
        {**PARAMS, "scope": "read"},
        {**PARAMS, "redirect_uri": "https://www.example.com"},  # omitted is not the same as sent
        {k: v for k, v in PARAMS.items() if k != "state"},
        {**PARAMS, "state": "xyz "},
    ],
)
def test_any_changed_parameter_breaks_the_token(changed: dict[str, str]) -> None:
    secret = csrf.browser_secret(None)
    token = csrf.issue(secret, PARAMS, NAMES, now=NOW)
    assert not csrf.check(secret, token, changed, NAMES, now=NOW)


def test_parameters_outside_the_bound_names_do_not_matter() -> None:
    secret = csrf.browser_secret(None)
    token = csrf.issue(secret, PARAMS, NAMES, now=NOW)
    assert csrf.check(secret, token, {**PARAMS, "username": "x"}, NAMES, now=NOW)


def test_another_browser_secret_fails() -> None:
    token = csrf.issue(csrf.browser_secret(None), PARAMS, NAMES, now=NOW)
    assert not csrf.check(csrf.browser_secret(None), token, PARAMS, NAMES, now=NOW)


def test_the_token_expires() -> None:
    secret = csrf.browser_secret(None)
    token = csrf.issue(secret, PARAMS, NAMES, now=NOW)
    assert not csrf.check(secret, token, PARAMS, NAMES, now=NOW + csrf.TTL)


def test_a_changed_deadline_breaks_the_mac() -> None:
    secret = csrf.browser_secret(None)
    expiry, mac = csrf.issue(secret, PARAMS, NAMES, now=NOW).split(".")
    assert not csrf.check(secret, f"{int(expiry) + 3600}.{mac}", PARAMS, NAMES, now=NOW)


@pytest.mark.parametrize("token", [None, "", "garbage", "1.2", "x" * 60, "99999999999.abc"])
def test_malformed_tokens_fail(token: str | None) -> None:
    assert not csrf.check(csrf.browser_secret(None), token, PARAMS, NAMES, now=NOW)


@pytest.mark.parametrize("secret", [None, "", "short", "a" * 42 + "!"])
def test_missing_or_malformed_secrets_fail(secret: str | None) -> None:
    real = csrf.browser_secret(None)
    assert not csrf.check(secret, csrf.issue(real, PARAMS, NAMES, now=NOW), PARAMS, NAMES, now=NOW)


def test_a_well_formed_cookie_is_kept_and_anything_else_replaced() -> None:
    kept = csrf.browser_secret(None)
    assert len(kept) == 43
    assert csrf.browser_secret(kept) == kept
    fresh = csrf.browser_secret("not-a-secret")
    assert fresh != "not-a-secret" and len(fresh) == 43
    assert csrf.browser_secret(None) != csrf.browser_secret(None)


def test_https_uses_a_host_only_cookie_name() -> None:
    assert csrf.cookie_name(True).startswith("__Host-")
    assert not csrf.cookie_name(False).startswith("__Host-")
