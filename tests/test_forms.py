"""Tests for jwtauth.resources.forms: form-encoded, UTF-8, size-capped bodies, each parameter once."""

from __future__ import annotations

import falcon
import pytest
from falcon import testing

from jwtauth.errors import InvalidRequest, OAuthError, PayloadTooLarge, UnsupportedMediaType
from jwtauth.resources.forms import FORM_TYPE, MAX_BODY, parse_params, read_form, reject_query


def request(body: bytes | str, content_type: str | None = FORM_TYPE, query: str = "") -> falcon.Request:
    headers = {"Content-Type": content_type} if content_type is not None else {}
    return testing.create_req(method="POST", path="/t", query_string=query, body=body, headers=headers)


# --- parse_params --------------------------------------------------------------------------


def test_parse_params_decodes() -> None:
    assert parse_params("a=1&b=x+y&c=%3A%2B%25&d=%C3%A9") == {"a": "1", "b": "x y", "c": ":+%", "d": "é"}


def test_empty_values_are_omitted() -> None:
    # RFC 6749 §3.1: parameters sent without a value are treated as omitted.
    assert parse_params("grant_type=client_credentials&scope=&resource") == {
        "grant_type": "client_credentials"
    }


def test_empty_string() -> None:
    assert parse_params("") == {}


@pytest.mark.parametrize("raw", ["a=1&a=2", "a=1&a=1", "a=&a=1", "a=1&b=2&a=3"])
def test_repeated_parameters_are_refused(raw: str) -> None:
    # RFC 6749 §3.1: parameters MUST NOT be included more than once.
    with pytest.raises(InvalidRequest, match="repeated"):
        parse_params(raw)


@pytest.mark.parametrize("raw", ["a=%00", "a%00=1", "a=x%00y", "a=\x00"])
def test_nul_is_refused(raw: str) -> None:
    with pytest.raises(InvalidRequest, match="NUL"):
        parse_params(raw)


@pytest.mark.parametrize("raw", ["a=%FF", "a=%C3", "%FF=1"])
def test_percent_encoded_non_utf8_is_refused(raw: str) -> None:
    with pytest.raises(InvalidRequest, match="UTF-8"):
        parse_params(raw)


def test_repeated_name_in_the_message_is_truncated() -> None:
    name = "n" * 200
    with pytest.raises(InvalidRequest) as info:
        parse_params(f"{name}=1&{name}=2")
    assert info.value.description is not None and len(info.value.description) < 80


# --- read_form ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        FORM_TYPE,
        FORM_TYPE + "; charset=utf-8",
        FORM_TYPE + ";charset=UTF-8",
        FORM_TYPE + '; charset="utf-8"',
        "Application/X-WWW-Form-URLEncoded",
    ],
)
def test_read_form_accepts_form_encoding(content_type: str) -> None:
    assert read_form(request("grant_type=client_credentials", content_type)) == {
        "grant_type": "client_credentials"
    }


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "multipart/form-data; boundary=x",
        "text/plain",
        FORM_TYPE + "; charset=latin-1",
        FORM_TYPE + "; charset=iso-8859-1",
        FORM_TYPE + "x",
    ],
)
def test_read_form_refuses_other_content_types(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        read_form(request("grant_type=client_credentials", content_type))
    assert info.value.status == 415 and info.value.error == "invalid_request"


def test_read_form_caps_the_body() -> None:
    assert read_form(request("a=" + "x" * (MAX_BODY - 2))) == {"a": "x" * (MAX_BODY - 2)}
    with pytest.raises(PayloadTooLarge) as info:
        read_form(request("a=" + "x" * (MAX_BODY - 1)))
    assert info.value.status == 413


def test_read_form_never_reads_past_an_absent_content_length() -> None:
    # Falcon's bounded stream reads nothing without Content-Length (e.g. chunked bodies):
    # the request then lacks grant_type and gets a clean 400, never an unbounded read.
    req = request("a=" + "x" * (2 * MAX_BODY))
    req.env.pop("CONTENT_LENGTH", None)
    assert read_form(req) == {}


@pytest.mark.parametrize(
    "body",
    [b"a=\xff", "a=é".encode(), "a=é".encode("latin-1"), b"a=\x80"],
    ids=["invalid utf8", "raw utf8", "latin-1", "continuation byte"],
)
def test_read_form_refuses_raw_non_ascii(body: bytes) -> None:
    with pytest.raises(InvalidRequest):
        read_form(request(body))


def test_read_form_refuses_raw_nul() -> None:
    with pytest.raises(InvalidRequest):
        read_form(request(b"grant_type=client_credentials&scope=read\x00"))


def test_errors_are_oauth_errors() -> None:
    for exc in (InvalidRequest, PayloadTooLarge, UnsupportedMediaType):
        assert issubclass(exc, OAuthError)


# --- reject_query ------------------------------------------------------------------------


def test_reject_query() -> None:
    reject_query(request("", query=""))
    with pytest.raises(InvalidRequest, match="URL"):
        reject_query(request("", query="client_secret=x"))
