"""The user's side of the authorize page without a browser: GET the form, sign in, POST it.

This stands in for the person at the keyboard, not for the OAuth client: the URL it opens is
the one the client library built, and the callback URL it returns goes back to that library.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import requests

from tests.authflow import parse_page
from tests.helpers import PASSWORD, USER


def sign_in_and_allow(authorization_url: str, *, username: str = USER, password: str = PASSWORD) -> str:
    """Open the authorization URL, allow as the demo user, return the redirect (callback) URL."""
    with requests.Session() as browser:
        page = browser.get(authorization_url, timeout=5)
        assert page.status_code == 200, page.text
        fields = parse_page(page.text).hidden  # the CSRF field; its cookie stays in the session
        fields.update(username=username, password=password, decision="allow")
        action = re.search(r'<form method="post" action="([^"]*)"', page.text)
        assert action is not None, page.text
        target = urljoin(page.url, html.unescape(action.group(1)))
        answer = browser.post(target, data=fields, allow_redirects=False, timeout=5)
    assert answer.status_code == 303, answer.text
    return answer.headers["Location"]
