"""Issue 18, item 1: strangers cannot lock users out, while a sprayer is still slowed.

On the password grant the "client address" is the app's own backend, so an address counter
there is the app's counter: it is keyed by (client, address) with a far higher limit. A user's
counter is passed by the right password from a device (address, or client and address) that
signed in as that user before; such a device's guesses are counted on its own (user, device)
counter, so a thief there is limited too.
"""

from __future__ import annotations

from typing import Any

from falcon import testing

from tests.helpers import PASSWORD, USER, VICTIM, VICTIM_PASSWORD, assert_clean_error, login, tokens_of

BACKEND = "10.1.1.1"


def locked(result: testing.Result) -> bool:
    if result.status_code != 429:
        return False
    assert_clean_error(result, 429, "slow_down")
    return True


def test_failed_logins_of_strangers_through_the_app_lock_no_user(http: testing.TestClient) -> None:
    """The issue's reproduction: 5 bogus usernames through the app's backend, then the real user."""
    for i in range(5):
        assert login(http, f"nobody{i}@example.com", "x", remote_addr=BACKEND).status_code == 400
    assert tokens_of(login(http, USER, PASSWORD, remote_addr=BACKEND))


def test_a_stranger_cannot_lock_a_user_out_of_a_known_device(http: testing.TestClient) -> None:
    tokens_of(login(http, USER, PASSWORD, remote_addr=BACKEND))  # the user's device is now known
    for i in range(5):
        assert login(http, USER, f"guess{i}", remote_addr=f"203.0.113.{i}").status_code == 400
    assert locked(login(http, USER, PASSWORD, remote_addr="203.0.113.99"))  # unknown device: locked
    assert tokens_of(login(http, USER, PASSWORD, remote_addr=BACKEND))  # known device: passes


def test_a_known_device_is_still_limited_per_user(http: testing.TestClient) -> None:
    tokens_of(login(http, USER, PASSWORD, remote_addr=BACKEND))
    for i in range(5):
        assert login(http, USER, f"guess{i}", remote_addr=BACKEND).status_code == 400
    assert locked(login(http, USER, PASSWORD, remote_addr=BACKEND))
    assert tokens_of(login(http, VICTIM, VICTIM_PASSWORD, remote_addr=BACKEND))  # others unaffected


def test_a_device_of_another_client_is_not_known(http: testing.TestClient) -> None:
    tokens_of(login(http, USER, PASSWORD, remote_addr=BACKEND, auth=("other", "othersecret")))
    for i in range(5):
        login(http, USER, f"guess{i}", remote_addr=f"203.0.113.{i}")
    assert locked(login(http, USER, PASSWORD, remote_addr=BACKEND))  # known for `other`, not testclient


def test_a_sprayer_through_one_client_and_address_is_still_slowed(make_app: Any) -> None:
    http = make_app(client_max_failures=20)
    for i in range(20):
        assert login(http, f"user{i}@example.com", "guess", remote_addr=BACKEND).status_code == 400
    assert locked(login(http, VICTIM, VICTIM_PASSWORD, remote_addr=BACKEND))
    assert tokens_of(login(http, VICTIM, VICTIM_PASSWORD, remote_addr="10.1.1.2"))


def test_the_default_app_limit_is_far_above_the_user_limit(sec_settings: Any) -> None:
    assert sec_settings.client_max_failures >= 20 * sec_settings.max_failures
