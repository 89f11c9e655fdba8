"""Issue 18, item 5: a consent submission is single-use.

Replaying the same POST in the same browser (back button, a script, a captured request with the
cookie) got a second code. The submission's CSRF token is claimed once, with a marker that lives
as long as the token, before anything is issued.
"""

from __future__ import annotations

from typing import Any

from falcon import testing

from tests.authflow import code_from, open_page, redirect_params, submit
from tests.helpers import README_QUERY, SPA, SPA_URI


def test_a_replayed_consent_post_gets_no_second_code(http: testing.TestClient) -> None:
    page = open_page(http, README_QUERY)
    first = submit(http, page)
    code_from(first)
    again = submit(http, page)
    assert again.status_code != 303 and "Location" not in again.headers
    assert again.status_code == 400


def test_a_replayed_implicit_consent_gets_no_second_token(http: testing.TestClient) -> None:
    query = {"response_type": "token", "client_id": SPA, "redirect_uri": SPA_URI, "state": "s"}
    page = open_page(http, query)
    first = submit(http, page)
    assert first.status_code == 303
    assert "access_token" in redirect_params(first.headers["Location"], fragment=True)
    again = submit(http, page)
    assert again.status_code == 400 and "Location" not in again.headers


def test_a_fresh_page_still_works_after_a_consent(http: testing.TestClient) -> None:
    page = open_page(http, README_QUERY)
    code_from(submit(http, page))
    clock_later = open_page(http, {**README_QUERY, "state": "other"}, cookie=page.cookie)
    code_from(submit(http, clock_later))


def test_a_wrong_password_does_not_spend_the_submission(http: testing.TestClient) -> None:
    page = open_page(http, README_QUERY)
    assert submit(http, page, password="wrong").status_code == 400
    code_from(submit(http, page))


def test_the_marker_expires_with_the_csrf_token(http: testing.TestClient, store: Any) -> None:
    page = open_page(http, README_QUERY)
    code_from(submit(http, page))
    # The submission's marker is a string; the subject's refresh index (a sorted set, written
    # ahead of the code's family) shares the `s` tag.
    markers = [k for k in store.scan_iter(_type="string") if b"{s:" in k]
    assert len(markers) == 1
    assert 0 < store.pttl(markers[0]) <= 600_000
