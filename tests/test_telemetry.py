"""Tests for jwtauth.cli.telemetry: when tracing is on, each worker's tracer, spans leaving `serve`."""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.trace import SpanKind

from jwtauth.cli import main, telemetry
from jwtauth.cli.console import OperatorError
from tests.helpers import PASSWORD, ROOT, TOKENS, USER, basic
from tests.tracekit import TRACE_ID, TRACEPARENT

# --- the rule: on when the variables say where spans go -----------------------------------------


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),  # the extra installed is not enough
        ({"OTEL_SERVICE_NAME": "auth"}, False),  # naming the service says nothing about where to
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_TRACES_EXPORTER": " ", "OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_SDK_DISABLED": " TRUE ", "OTEL_TRACES_EXPORTER": "console"}, False),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "console"}, True),
    ],
)
def test_tracing_is_on_when_the_variables_say_where_spans_go(env: dict[str, str], on: bool) -> None:
    assert telemetry.wanted(env) is on


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_TRACES_EXPORTER": "otlp"},
        {"OTEL_TRACES_EXPORTER": "console"},
        {"OTEL_TRACES_EXPORTER": "otlp_proto_http"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
    ],
)
def test_the_exporters_the_extra_ships_pass_the_check(env: dict[str, str]) -> None:
    telemetry.check(env)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "'zipkin'"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "otlp over grpc"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, "http/json"),
    ],
)
def test_an_exporter_that_is_not_installed_stops_serve_with_one_line(env: dict[str, str], says: str) -> None:
    with pytest.raises(OperatorError, match="no span exporter for") as raised:
        main._tracing(env)
    assert says in str(raised.value) and "\n" not in str(raised.value)


def test_without_the_extra_serve_warns_and_runs_untraced(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(telemetry, "installed", lambda: False)
    with caplog.at_level(logging.WARNING, logger="jwtauth"):
        assert main._tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}) is False
    assert "otel extra is not installed" in caplog.text and "jwtauth-server[otel]" in caplog.text
    caplog.clear()
    assert main._tracing({}) is False
    assert not caplog.records  # nothing asked for tracing: nothing to say


# --- a worker's tracer: the SDK's handling of the standard variables -------------------------------


def _started(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")  # spans go nowhere: the test reads the span
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    span = telemetry.worker_tracer().start_span("probe")
    span.end()
    return span


def test_the_service_is_jwtauth_unless_the_variables_name_it(monkeypatch: pytest.MonkeyPatch) -> None:
    resource = _started(monkeypatch).resource.attributes
    assert resource["service.name"] == "jwtauth" and resource["service.version"]
    assert _started(monkeypatch, OTEL_SERVICE_NAME="auth-eu").resource.attributes["service.name"] == "auth-eu"
    named = _started(monkeypatch, OTEL_RESOURCE_ATTRIBUTES="service.name=auth-us,deployment.environment=prod")
    assert named.resource.attributes["service.name"] == "auth-us"
    assert named.resource.attributes["deployment.environment"] == "prod"


def test_the_sampler_is_the_variables_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _started(monkeypatch).get_span_context().trace_flags.sampled  # parentbased_always_on: the default
    assert not _started(monkeypatch, OTEL_TRACES_SAMPLER="always_off").get_span_context().trace_flags.sampled


# --- off means jwtauth imports and calls nothing of OpenTelemetry ----------------------------------

# What a worker does, in a fresh interpreter: decide (as serve does), build the app (with a
# tracer only when on), answer a token request and a store-backed one; then report which
# OpenTelemetry modules jwtauth added to those redis-py imported. (redis-py 8 imports the
# OpenTelemetry API and metrics SDK on its own whenever they are installed, for metrics it
# records only once configured.) PROBE_BLOCK=1 makes opentelemetry not installed.
_PROBE = """
import json, os, sys
if os.environ.get("PROBE_BLOCK"):
    class NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "opentelemetry":
                raise ModuleNotFoundError(name)
    sys.meta_path.insert(0, NotInstalled())
import redis, fakeredis
def otel():
    return {m for m in sys.modules if m.split(".")[0] == "opentelemetry"}
before = otel()
import pathlib, tempfile, time
from falcon import testing
from jwtauth.app import create_app
from jwtauth.cli import keyfolder, main, telemetry
from jwtauth.config.settings import load_settings
from jwtauth.keys import KeyRing
from tests.helpers import FIXTURES
tracing = main._tracing(os.environ)
keys = pathlib.Path(tempfile.mkdtemp()) / "keys"
keyfolder.ensure(keys, "ES256", now=time.time(), retire_after=960)
app = testing.TestClient(create_app(
    load_settings(FIXTURES, env={}), KeyRing(keys, retire_after=960),
    fakeredis.FakeRedis(server=fakeredis.FakeServer()),
    tracer=telemetry.worker_tracer() if tracing else None,
))
auth = {"Authorization": "Basic dGVzdGNsaWVudDp0ZXN0cGFzc3dvcmQ=",
        "Content-Type": "application/x-www-form-urlencoded"}
for path, body in (("/api/v1/tokens", "grant_type=client_credentials"), ("/api/v1/revoke", "token=x")):
    assert app.simulate_post(path, body=body, headers=auth).status_code == 200
ours = sorted(m for m in sys.modules if m in ("jwtauth.resources.tracing", "jwtauth.store.traced"))
added = sorted(otel() - before)
print(json.dumps({"tracing": tracing, "before": sorted(before), "added": added, "ours": ours}))
"""


def _probe(**env: str) -> tuple[dict[str, Any], str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "JWTAUTH_", "PROBE_"))}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={**clean, **env},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return report, done.stderr


@pytest.mark.process
@pytest.mark.parametrize(
    "env",
    [{}, {"OTEL_SERVICE_NAME": "jwtauth"}, {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}],
)
def test_with_tracing_off_jwtauth_imports_nothing_of_opentelemetry(env: dict[str, str]) -> None:
    report, _ = _probe(**env)
    assert report["tracing"] is False
    assert report["added"] == [] and report["ours"] == []


@pytest.mark.process
def test_with_tracing_on_the_probe_sees_the_imports() -> None:
    # The check above can fail: on, the SDK's tracing and jwtauth's span code are loaded.
    report, _ = _probe(OTEL_TRACES_EXPORTER="console", OTEL_TRACES_SAMPLER="always_off")
    assert report["tracing"] is True
    assert "opentelemetry.sdk.trace" in report["added"]
    assert report["ours"] == ["jwtauth.resources.tracing", "jwtauth.store.traced"]


@pytest.mark.process
def test_without_the_extra_the_variables_only_earn_a_warning() -> None:
    report, stderr = _probe(PROBE_BLOCK="1", OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318")
    assert report == {"tracing": False, "before": [], "added": [], "ours": []}
    assert "otel extra is not installed" in stderr


# --- spans leave a real `jwtauth serve` worker -------------------------------------------------------


class _Collector(http.server.ThreadingHTTPServer):
    """A tiny OTLP/HTTP receiver: keeps every span of every POST /v1/traces."""

    def __init__(self) -> None:
        self.spans: list[tuple[dict[str, Any], Any]] = []  # (resource attributes, span)
        super().__init__(("127.0.0.1", 0), _Receive)


class _Receive(http.server.BaseHTTPRequestHandler):
    server: _Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        assert self.path == "/v1/traces" and self.headers["Content-Type"] == "application/x-protobuf"
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                self.server.spans += [(resource, span) for span in scope.spans]
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test's output quiet."""


@pytest.fixture
def receiver() -> Iterator[_Collector]:
    collector = _Collector()
    thread = threading.Thread(target=collector.serve_forever, daemon=True)
    thread.start()
    yield collector
    collector.shutdown()
    collector.server_close()


def test_spans_leave_the_worker_process_over_otlp(
    serve: Callable[..., contextlib.AbstractContextManager[Any]], receiver: _Collector
) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_address[1]}",
        # A batch leaves only when the worker exits: this proves the flush at shutdown.
        "OTEL_BSP_SCHEDULE_DELAY": "600000",
        "OTEL_SERVICE_NAME": "jwtauth-e2e",
    }
    body = {"grant_type": "password", "username": USER, "password": PASSWORD}
    with serve(workers=1, env=env) as server:
        headers = {**basic(), "traceparent": TRACEPARENT}
        answer = requests.post(server.base + TOKENS, data=body, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        assert receiver.spans == []  # still in the worker's batch
    assert server.proc.returncode == 0
    output = server.output()
    assert "Traceback" not in output and "tracing on" in output
    assert f'"endpoint":"token","grant":"password","error":null,"trace_id":"{TRACE_ID}"' in output
    ours = [(resource, span) for resource, span in receiver.spans if span.trace_id.hex() == TRACE_ID]
    requests_seen = [span for _, span in ours if span.kind == SpanKind.SERVER.value + 1]  # proto: +1
    assert [span.name for span in requests_seen] == ["POST /api/v1/tokens"]
    assert all(resource["service.name"] == "jwtauth-e2e" for resource, _ in ours)
    (request,) = requests_seen
    store = [span for _, span in ours if span.parent_span_id == request.span_id]
    said = [{a.key: a.value.string_value for a in span.attributes} for span in store]
    assert said and all(attributes["db.system"] == "redis" for attributes in said)
    assert "limits.acquire" in {attributes.get("db.stored_procedure.name") for attributes in said}
    assert request.parent_span_id.hex() == "b7ad6b7169203331"
