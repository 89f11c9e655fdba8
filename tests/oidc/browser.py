"""A cookie-keeping browser over TestClient for the SSO flows: the CSRF and the session cookie."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from falcon import testing

from tests.authflow import parse_page, redirect_params
from tests.helpers import AUTHORIZE, FORM, PASSWORD, USER

SESSION = "jwtauth-session"


class Browser:
    """Keep the cookies one browser would send to /authorize."""

    def __init__(self, http: testing.TestClient) -> None:
        self.http = http
        self.cookies: dict[str, str] = {}
        self.fields: dict[str, str] = {}

    def _headers(self) -> dict[str, str]:
        jar = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return {"Cookie": jar} if jar else {}

    def _keep(self, result: testing.Result) -> testing.Result:
        for name, cookie in result.cookies.items():
            self.cookies[name] = cookie.value
        return result

    def get(self, query: Mapping[str, str]) -> testing.Result:
        """GET /authorize; remember the page's hidden fields."""
        result = self._keep(
            self.http.simulate_get(AUTHORIZE, query_string=urlencode(query), headers=self._headers())
        )
        self.fields = parse_page(result.text).hidden if result.status_code == 200 else {}
        return result

    def post(self, **fields: str | None) -> testing.Result:
        """POST the last page's form with these fields (None drops one)."""
        sent = {**self.fields, "decision": "allow"}
        for name, value in fields.items():
            if value is None:
                sent.pop(name, None)
            else:
                sent[name] = value
        headers = {**FORM, **self._headers()}
        return self._keep(self.http.simulate_post(AUTHORIZE, body=urlencode(sent), headers=headers))

    def open(self, path: str, fields: Mapping[str, str] | None = None) -> testing.Result:
        """GET `path`, or POST exactly `fields` to it; remember the page's hidden fields."""
        if fields is None:
            result = self.http.simulate_get(path, headers=self._headers())
        else:
            headers = {**FORM, **self._headers()}
            result = self.http.simulate_post(path, body=urlencode(fields), headers=headers)
        self._keep(result)
        self.fields = parse_page(result.text).hidden if "<form" in result.text else {}
        return result

    def sign_in(
        self, query: Mapping[str, str], username: str = USER, password: str = PASSWORD
    ) -> testing.Result:
        """Open the sign-in page and allow it with the password."""
        page = self.get(query)
        assert page.status_code == 200, page.text
        assert 'name="password"' in page.text
        return self.post(username=username, password=password)


def answer(result: testing.Result, **kwargs: Any) -> dict[str, str]:
    """Return the response parameters of a 303 to the client."""
    assert result.status_code == 303, result.text
    return redirect_params(result.headers["Location"], **kwargs)
