"""Drive the authorize page through falcon's TestClient: read the form, post it, read the redirect."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from falcon import testing

from tests.helpers import AUTHORIZE, FORM, PASSWORD, USER


class _Inputs(HTMLParser):
    """Collect the hidden inputs and submit buttons of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden: dict[str, str] = {}
        self.inputs: list[dict[str, str | None]] = []
        self.buttons: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "input":
            self.inputs.append(found)
            if found.get("type") == "hidden" and found.get("name"):
                self.hidden[str(found["name"])] = found.get("value") or ""
        elif tag == "button":
            self.buttons.append(found)


def parse_page(html: str) -> _Inputs:
    """Return the inputs and buttons of an HTML page."""
    parser = _Inputs()
    parser.feed(html)
    return parser


@dataclass
class Page:
    """A rendered login page: its response, hidden fields and the CSRF cookie to send back."""

    result: testing.Result
    fields: dict[str, str]
    cookie: str | None


def cookie_header(result: testing.Result, previous: str | None = None) -> str | None:
    """Return a Cookie header value from the response's Set-Cookie (or keep the previous one)."""
    for name, cookie in result.cookies.items():
        if "csrf" in name:
            return f"{name}={cookie.value}"
    return previous


def open_page(
    client: testing.TestClient,
    params: Mapping[str, str] | str,
    *,
    cookie: str | None = None,
    path: str = AUTHORIZE,
) -> Page:
    """GET the authorize page and return its form."""
    query = params if isinstance(params, str) else urlencode(params)
    headers = {"Cookie": cookie} if cookie else {}
    result = client.simulate_get(path, query_string=query, headers=headers)
    fields = parse_page(result.text).hidden if result.status_code == 200 else {}
    return Page(result, fields, cookie_header(result, cookie))


def submit(
    client: testing.TestClient,
    page: Page,
    *,
    decision: str | None = "allow",
    username: str | None = USER,
    password: str | None = PASSWORD,
    changes: Mapping[str, str | None] | None = None,
    cookie: str | None = "",
    remote_addr: str = "127.0.0.1",
) -> testing.Result:
    """POST the page's form as a browser would; `changes` tampers with fields (None removes)."""
    fields: dict[str, str] = dict(page.fields)
    for name, value in {"decision": decision, "username": username, "password": password}.items():
        if value is not None:
            fields[name] = value
    for name, changed in (changes or {}).items():
        if changed is None:
            fields.pop(name, None)
        else:
            fields[name] = changed
    sent_cookie = page.cookie if cookie == "" else cookie
    headers = {**FORM, **({"Cookie": sent_cookie} if sent_cookie else {})}
    return client.simulate_post(
        AUTHORIZE, body=urlencode(fields), headers=headers, remote_addr=remote_addr
    )


def authorize(client: testing.TestClient, params: Mapping[str, str], **post: Any) -> testing.Result:
    """Open the page and allow it as the demo user; return the POST's result."""
    page = open_page(client, params)
    assert page.result.status_code == 200, page.result.text
    return submit(client, page, **post)


def redirect_params(location: str, *, fragment: bool = False) -> dict[str, str]:
    """Return the response parameters of a redirect Location (query or fragment)."""
    parts = urlsplit(location)
    return dict(parse_qsl(parts.fragment if fragment else parts.query, keep_blank_values=True))


def code_from(result: testing.Result) -> str:
    """Return the code of a 303 response."""
    assert result.status_code == 303, result.text
    return redirect_params(result.headers["Location"])["code"]
