"""JWTAUTH_LOG_FORMAT / JWTAUTH_LOG_LEVEL (jwtauth/cli/logs.py): JSON lines, tracebacks as one field."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import pytest
import requests
from falcon import testing

from jwtauth.cli import logs
from jwtauth.cli import main as cli
from tests.helpers import TOKENS


def test_defaults_are_text_and_info() -> None:
    assert logs.choose({}) == ("text", "INFO")
    assert logs.choose({"JWTAUTH_LOG_FORMAT": "JSON", "JWTAUTH_LOG_LEVEL": "debug"}) == ("json", "DEBUG")


@pytest.mark.parametrize(("name", "value"), [("JWTAUTH_LOG_FORMAT", "xml"), ("JWTAUTH_LOG_LEVEL", "LOUD")])
def test_a_bad_value_names_the_variable(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(name, value)
    assert cli.main(["hash-secret", "--stdin"]) == 2
    assert capsys.readouterr().err.strip().startswith(f"jwtauth: {name}: must be")


def test_a_traceback_is_one_field_beside_the_request_id() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord(
            "jwtauth", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info()
        )
    record.request_id = "r-42"
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert (parsed["level"], parsed["logger"], parsed["message"], parsed["request_id"]) == (
        "ERROR",
        "jwtauth",
        "failed here",
        "r-42",
    )
    assert parsed["traceback"].startswith("Traceback") and "RuntimeError: boom" in parsed["traceback"]


def test_cli_errors_are_json_lines_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JWTAUTH_LOG_FORMAT", "json")
    assert cli.main(["check-config", "/nonexistent/settings.toml"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    parsed = json.loads(line)
    assert parsed["level"] == "ERROR" and parsed["message"] == "/nonexistent/settings.toml: file not found"


def test_an_application_error_logs_its_request_id(
    make_app: Callable[..., testing.TestClient],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("jwtauth.resources.discovery.JWKSResource.on_get", broken)
    result = make_app().simulate_get("/jwks", headers={"X-Request-ID": "bug-1"})
    assert result.status_code == 500 and "a bug" not in result.text
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.request_id == "bug-1" and record.exc_info  # type: ignore[attr-defined]
    parsed = json.loads(logs.JsonFormatter().format(record))
    assert parsed["request_id"] == "bug-1" and "RuntimeError: a bug" in parsed["traceback"]


@pytest.mark.e2e
def test_every_line_of_a_json_server_is_json(serve: Callable[..., Any]) -> None:
    # stdout (access and audit lines) and stderr (jwtauth's and granian's lines) share the log file.
    with serve(env={"JWTAUTH_LOG_FORMAT": "json"}) as server:
        answer = requests.post(
            server.base + TOKENS,
            data={"grant_type": "client_credentials"},
            auth=("testclient", "testpassword"),
            timeout=5,
        )
        assert answer.status_code == 200
    lines = [json.loads(line) for line in server.output().splitlines() if line.strip()]
    assert any(line.get("logger") == "granian" for line in lines)  # granian's own start-up lines
    assert any(line.get("audit") == "token_issued" and line["client_id"] == "testclient" for line in lines)
    access = [line for line in lines if line.get("endpoint") == "token"]
    assert len(access) == 1 and access[0]["client_id"] == "testclient"
