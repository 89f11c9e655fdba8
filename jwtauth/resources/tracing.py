"""One OpenTelemetry SERVER span per request (the `otel` extra), parented by an incoming `traceparent`.

create_app installs `RequestSpans` first of all middleware, and only when it is given a tracer:
its span is current from before the observer starts its clock until after the access line is
written, so the store's spans (store/traced.py) are its children and the access line carries
its trace id (`req.context.trace_id`, `span_id`).

Attributes follow the HTTP semantic conventions, held to what the access log may show:
`http.request.method`, `http.route` (the matched route's path, one of resources/paths.LABELS,
never a client-chosen path), `http.response.status_code`, `client.address`, and jwtauth's own
`jwtauth.endpoint`, `jwtauth.grant`, `jwtauth.client_id` (once a resource identified a client),
`jwtauth.oauth_error`, `jwtauth.request_id`. Never a query, a body, a header's value, a token.
A 5xx answer marks the span as an error (a 4xx is the client's: not a server span's error).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import falcon
from opentelemetry import context, propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from jwtauth.observability import METHODS, NO_GRANT


class _Environ(Getter[Mapping[str, Any]]):
    """Read propagation headers (`traceparent`, `tracestate`, `baggage`) from a WSGI environ."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get("HTTP_" + key.upper().replace("-", "_"))
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return [k[5:].lower().replace("_", "-") for k in carrier if k.startswith("HTTP_")]


_ENVIRON = _Environ()


def _method(req: falcon.Request) -> str:
    """Return the request's method as semconv spells it: a known method, else `_OTHER`."""
    return req.method if req.method in METHODS else "_OTHER"


class RequestSpans:
    """Falcon middleware: a SERVER span around each request, current while the request runs."""

    def __init__(self, tracer: Tracer, endpoints: Mapping[str, str]) -> None:
        self.tracer, self.endpoints = tracer, dict(endpoints)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        # W3C Trace Context by default; OTEL_PROPAGATORS picks others (the SDK reads it).
        parent = propagate.extract(req.env, getter=_ENVIRON)
        method = _method(req)
        span = self.tracer.start_span(
            method, context=parent, kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.scheme": req.scheme},
        )  # fmt: skip
        ctx = req.context
        ctx.span = span
        ctx.span_token = context.attach(trace.set_span_in_context(span, parent))
        found = span.get_span_context()
        if found.is_valid:  # also unsampled: the line still names the trace the caller started
            ctx.trace_id = trace.format_trace_id(found.trace_id)
            ctx.span_id = trace.format_span_id(found.span_id)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object | None, req_succeeded: bool
    ) -> None:
        ctx = req.context
        span = getattr(ctx, "span", None)
        if span is None:  # an earlier middleware failed before this one's process_request
            return
        try:
            if span.is_recording():
                self._describe(span, req, resp)
        finally:
            span.end()
            context.detach(ctx.span_token)

    def _describe(self, span: trace.Span, req: falcon.Request, resp: falcon.Response) -> None:
        """Set what the request turned out to be: route, status, client, grant, error."""
        ctx = req.context
        route = req.uri_template if req.uri_template in self.endpoints else None
        status = resp.status_code
        attributes: dict[str, Any] = {
            "http.response.status_code": status,
            "jwtauth.endpoint": self.endpoints.get(route or "", "unmatched"),
            "jwtauth.request_id": getattr(ctx, "request_id", ""),
        }
        if route is not None:  # semconv: "{method} {http.route}", the method alone without a route
            attributes["http.route"] = route
            span.update_name(f"{_method(req)} {route}")
        address = getattr(ctx, "client_addr", None) or req.remote_addr
        if address:
            attributes["client.address"] = address
        for name, value in (
            ("jwtauth.grant", None if getattr(ctx, "grant", NO_GRANT) == NO_GRANT else ctx.grant),
            ("jwtauth.client_id", getattr(ctx, "client_id", None)),
            ("jwtauth.oauth_error", getattr(ctx, "error", None)),
        ):
            if value is not None:
                attributes[name] = value
        span.set_attributes(attributes)
        if status >= 500:
            span.set_attribute("error.type", str(status))
            span.set_status(Status(StatusCode.ERROR, getattr(ctx, "error", None) or str(status)))
