"""One SERVER span per request (resources/tracing.py), its store children, its id in the access line."""

from __future__ import annotations

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from tests.helpers import TOKENS, basic, login, tokens_of
from tests.tracekit import PARENT_ID, TRACE_ID, TRACEPARENT, Traced, traced


@pytest.fixture
def app(settings: Settings, keyring: KeyRing) -> Traced:
    return traced(settings, keyring)


def test_a_token_request_is_one_server_span_with_a_child_per_store_call(app: Traced) -> None:
    result = login(app.http)
    assert result.status_code == 200, result.text
    (request,) = app.requests()
    assert request.name == "POST /api/v1/tokens"
    assert request.kind == SpanKind.SERVER
    assert dict(request.attributes or {}) | {"jwtauth.request_id": "-"} == {
        "http.request.method": "POST",
        "url.scheme": "http",
        "http.route": "/api/v1/tokens",
        "http.response.status_code": 200,
        "client.address": "127.0.0.1",
        "jwtauth.endpoint": "token",
        "jwtauth.grant": "password",
        "jwtauth.client_id": "testclient",
        "jwtauth.request_id": "-",
    }
    calls = app.store_calls()
    # The password grant: sign-in counters (scripts), then the refresh family's first token.
    scripts = [str((s.attributes or {}).get("db.stored_procedure.name", "")) for s in calls]
    assert {"limits.acquire", "refresh_scripts.indexed_create"} <= set(",".join(scripts).split(","))
    assert request.context is not None
    for call in calls:
        assert call.parent is not None and call.parent.span_id == request.context.span_id
        assert call.context is not None and call.context.trace_id == request.context.trace_id
        assert (call.attributes or {})["db.system"] == "redis"
        assert call.end_time is not None and request.end_time is not None
        assert call.end_time <= request.end_time


def test_an_incoming_traceparent_is_the_parent(app: Traced) -> None:
    result = app.http.simulate_post(
        TOKENS, body="grant_type=client_credentials", headers={**basic(), "traceparent": TRACEPARENT}
    )
    assert result.status_code == 200
    (request,) = app.requests()
    assert request.context is not None and f"{request.context.trace_id:032x}" == TRACE_ID
    assert request.parent is not None and request.parent.is_remote
    assert f"{request.parent.span_id:016x}" == PARENT_ID


def test_without_a_traceparent_each_request_starts_its_own_trace(app: Traced) -> None:
    for _ in range(2):
        assert app.http.simulate_get("/jwks").status_code == 200
    first, second = app.requests()
    assert first.parent is None and second.parent is None
    assert first.context is not None and second.context is not None
    assert first.context.trace_id != second.context.trace_id


def test_the_access_line_names_the_trace_and_the_span(app: Traced) -> None:
    app.http.simulate_get("/jwks", headers={"traceparent": TRACEPARENT})
    app.http.simulate_get("/jwks")
    (with_parent, fresh) = app.log()
    spans = app.requests()
    assert with_parent["trace_id"] == TRACE_ID
    for line, span in zip((with_parent, fresh), spans, strict=True):
        assert span.context is not None
        assert line["trace_id"] == f"{span.context.trace_id:032x}"
        assert line["span_id"] == f"{span.context.span_id:016x}"
        assert (span.attributes or {})["jwtauth.request_id"] == line["request_id"]


def test_an_unsampled_caller_gets_no_span_but_its_trace_id_in_the_line(app: Traced) -> None:
    # The default sampler follows the caller's decision (parentbased_always_on): flags 00 = not sampled.
    app.http.simulate_get("/jwks", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00"})
    assert app.spans() == []
    assert app.log()[0]["trace_id"] == TRACE_ID


def test_a_malformed_traceparent_is_ignored(app: Traced) -> None:
    app.http.simulate_get("/jwks", headers={"traceparent": "00-not-a-trace-01"})
    (request,) = app.requests()
    assert request.parent is None


def test_an_unmatched_path_names_no_route(app: Traced) -> None:
    app.http.simulate_get("/secret-looking/path")
    (request,) = app.requests()
    assert request.name == "GET"
    attributes = dict(request.attributes or {})
    assert "http.route" not in attributes and attributes["jwtauth.endpoint"] == "unmatched"
    assert "secret-looking" not in repr(attributes)
    assert request.status.status_code == StatusCode.UNSET  # a 404 is the client's error


def test_an_oauth_error_is_an_attribute_not_a_span_error(app: Traced) -> None:
    app.http.simulate_post(TOKENS, body="grant_type=client_credentials", headers=basic("testclient", "no"))
    (request,) = app.requests()
    attributes = dict(request.attributes or {})
    assert attributes["http.response.status_code"] == 401
    assert attributes["jwtauth.oauth_error"] == "invalid_client"
    assert request.status.status_code == StatusCode.UNSET


def test_a_store_outage_marks_the_request_and_the_failed_call(app: Traced) -> None:
    app.server.connected = False
    result = login(app.http)
    assert result.status_code == 503
    (request,) = app.requests()
    assert request.status.status_code == StatusCode.ERROR
    assert (request.attributes or {})["error.type"] == "503"
    failed = [s for s in app.store_calls() if s.status.status_code == StatusCode.ERROR]
    assert failed and (failed[0].attributes or {})["error.type"] == "ConnectionError"
    assert not failed[0].events  # the exception's text (it may quote a key) is not recorded


def test_a_refresh_rotation_is_traced_too(app: Traced) -> None:
    _, refresh_token = tokens_of(login(app.http))
    app.exporter.clear()
    body = f"grant_type=refresh_token&refresh_token={refresh_token}"
    assert app.http.simulate_post(TOKENS, body=body, headers=basic()).status_code == 200
    names = [(s.attributes or {}).get("db.stored_procedure.name") for s in app.store_calls()]
    assert "refresh_scripts.rotate" in names
    assert [s.name for s in app.requests()] == ["POST /api/v1/tokens"]
