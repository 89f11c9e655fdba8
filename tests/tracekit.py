"""An app traced into the OpenTelemetry SDK's InMemorySpanExporter, with its access lines captured."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import fakeredis
from falcon import testing
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from jwtauth.accounts.hashing import SecretChecker
from jwtauth.app import create_app
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from tests.helpers import CHEAP

# A W3C traceparent (the spec's own example): version, trace id, parent span id, flags (sampled).
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


@dataclasses.dataclass
class Traced:
    """A TestClient whose app traces into `exporter`, and the access lines it wrote."""

    http: testing.TestClient
    exporter: InMemorySpanExporter
    lines: list[str]
    server: fakeredis.FakeServer

    def spans(self) -> list[ReadableSpan]:
        """Return the finished spans, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def requests(self) -> list[ReadableSpan]:
        """Return the SERVER spans: one per request."""
        return [s for s in self.spans() if s.kind == SpanKind.SERVER]

    def store_calls(self) -> list[ReadableSpan]:
        """Return the CLIENT spans: one per Redis round trip."""
        return [s for s in self.spans() if s.kind == SpanKind.CLIENT]

    def log(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


def traced(settings: Settings, keyring: KeyRing, **create: Any) -> Traced:
    """Return an app on a fresh fakeredis whose spans go to an in-memory exporter, synchronously."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = fakeredis.FakeServer()
    lines: list[str] = []
    app = create_app(
        settings, keyring, fakeredis.FakeRedis(server=server), checker=SecretChecker(dummy_log_n=CHEAP),
        access_log=lines.append, tracer=provider.get_tracer("jwtauth"), **create,
    )  # fmt: skip
    return Traced(testing.TestClient(app), exporter, lines, server)


def everything_said(spans: list[ReadableSpan]) -> str:
    """Return every text a span carries: names, attributes, status, events, links, resource."""
    out = []
    for span in spans:
        out += [span.name, repr(dict(span.attributes or {})), span.status.description or ""]
        out += [f"{e.name} {dict(e.attributes or {})}" for e in span.events]
        out += [repr(dict(link.attributes or {})) for link in span.links]
        out.append(repr(dict(span.resource.attributes)))
    return "\n".join(out)
