"""Request ids, one JSON access-log line per request, and Prometheus metrics at GET /metrics.

Three pieces, wired by create_app:

- `Events`: what grants and resources report that no response shows (a refresh rotation, a
  reuse detection, a revocation, a signer change). `Metrics` implements it; `NO_EVENTS` is the
  default for pieces built outside an app.
- `Metrics`: the worker's Prometheus counters and histogram. Under `jwtauth serve` every worker
  writes them to files in PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode), so
  /metrics answered by any worker reports them all.
- `Observer`: Falcon middleware that gives each request an id, times it, labels it by endpoint
  and grant, counts it, and writes one JSON line about it.

What the access log never holds: a token, secret, password, code, or anything from the query
string or body. It logs the method, the path of a matched route (unmatched paths are
client-chosen text, so only "unmatched" is logged), the status, the OAuth error code, the
duration, the request id, the client address, the client_id once a resource has identified
a registered client, and the endpoint/grant labels; with tracing on (the `otel` extra), the
current span's trace_id and span_id.

prometheus_client is imported only when a `Metrics` is built: it picks its storage (in memory
or mmapped files) once, at import, from PROMETHEUS_MULTIPROC_DIR, which `jwtauth serve` sets
before forking the workers that build their apps.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any, Protocol

import falcon

if TYPE_CHECKING:
    from prometheus_client import Counter

REQUEST_ID_HEADER = "X-Request-ID"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# A caller's id is kept only if it is short and plain: it goes into every log line.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:=+/-]{1,128}")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"})

# Endpoint labels; app.py maps each route to one of them.
TOKEN = "token"  # noqa: S105  # a label, not a secret
AUTHORIZE = "authorize"
UNMATCHED = "unmatched"
NO_GRANT = "-"
LATENCY = "jwtauth_request_duration_seconds"
TOKENS_ISSUED, ISSUED_HELP = "jwtauth_tokens_issued", "Access tokens issued"
# Seconds; a token request takes ~0.1-1 ms of CPU, one Redis round trip or scrypt much more.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

AccessLog = Callable[[str], None]
# One access-log line, formatted by hand (json.dumps of a dict costs three times as much). Each
# raw %s is text this server chose: a request id of a safe alphabet, a method from a fixed set,
# a registered route, a label, a grant name; the client address and the error are JSON-escaped.
_LINE = (
    '{"ts":%.3f,"request_id":"%s","method":"%s","path":"%s","status":%d,"ms":%.3f,'
    '"client":%s,"client_id":%s,"endpoint":"%s","grant":"%s","error":%s}'
)
# Appended while an OpenTelemetry span is current (resources/tracing.py): ids of hex digits.
_TRACE = ',"trace_id":"%s","span_id":"%s"}'


class Events(Protocol):
    """Facts only a grant, a resource or the key ring knows; counted, never logged with secrets."""

    def refresh_rotated(self) -> None:
        """Report a refresh token exchanged for its successor (RFC 6749 §6)."""

    def reuse_detected(self, kind: str) -> None:
        """Report a used refresh token or code presented again; its grant is revoked (RFC 9700 §4.14)."""

    def revoked(self) -> None:
        """Report a refresh family ended by a revocation request (RFC 7009)."""

    def key_rotated(self) -> None:
        """Report that the key ring's signer changed."""

    def device_flow(self, outcome: str) -> None:
        """Report a step of a device request (RFC 8628): requested, approved, denied, expired, slow_down."""


class NoEvents:
    """Events that go nowhere: the default outside create_app."""

    def refresh_rotated(self) -> None:
        """Ignore."""

    def reuse_detected(self, kind: str) -> None:
        """Ignore."""

    def revoked(self) -> None:
        """Ignore."""

    def key_rotated(self) -> None:
        """Ignore."""

    def device_flow(self, outcome: str) -> None:
        """Ignore."""


NO_EVENTS: Events = NoEvents()


class EventSinks:
    """Events told to several sinks (the metrics and the audit log), in order."""

    def __init__(self, *sinks: Events) -> None:
        self.sinks = sinks

    def refresh_rotated(self) -> None:
        """Tell every sink."""
        for sink in self.sinks:
            sink.refresh_rotated()

    def reuse_detected(self, kind: str) -> None:
        """Tell every sink."""
        for sink in self.sinks:
            sink.reuse_detected(kind)

    def revoked(self) -> None:
        """Tell every sink."""
        for sink in self.sinks:
            sink.revoked()

    def key_rotated(self) -> None:
        """Tell every sink."""
        for sink in self.sinks:
            sink.key_rotated()

    def device_flow(self, outcome: str) -> None:
        """Tell every sink."""
        for sink in self.sinks:
            sink.device_flow(outcome)


class Metrics:
    """One worker's Prometheus metrics; also the `Events` sink of its grants and key ring.

    Each app owns its registry (no module state), so tests build as many apps as they like.
    With `multiprocess_dir` (or PROMETHEUS_MULTIPROC_DIR set) values live in mmapped files
    there and `render` merges the files of every worker, dead ones included: counters keep
    what a killed worker had counted.
    """

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir or os.environ.get(MULTIPROC_ENV) or None
        if self.multiprocess_dir:
            # prometheus_client reads the variable at import; the worker must see it too.
            os.environ[MULTIPROC_ENV] = self.multiprocess_dir
        from prometheus_client import CollectorRegistry, Counter, Histogram, values

        if bool(self.multiprocess_dir) != bool(getattr(values.ValueClass, "_multiprocess", False)):
            raise RuntimeError(
                f"prometheus_client was imported before {MULTIPROC_ENV} was set (or unset): "
                "metrics would not be shared between workers"
            )
        self.registry = CollectorRegistry(auto_describe=False)
        self._register_request_metrics(Counter, Histogram)
        self._register_flow_metrics(Counter)
        # Label lookups cost microseconds; the children of a label set are found once.
        self._children: dict[tuple[str, str, int], Any] = {}
        self._labelled: dict[tuple[Counter, str], Any] = {}

    def _register_request_metrics(self, Counter: Any, Histogram: Any) -> None:
        """Create the per-request metrics: latency by endpoint, tokens, refresh and client failures."""
        reg = self.registry
        # One histogram per endpoint, grant and status: its _count is the request counter.
        self._latency = Histogram(
            LATENCY,
            "Requests answered, by the time from reaching the app to the response leaving it",
            ["endpoint", "grant", "status"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self._issued = Counter(TOKENS_ISSUED, ISSUED_HELP, ["grant"], registry=reg)
        self._rotations = Counter("jwtauth_refresh_rotations", "Refresh tokens rotated", registry=reg)
        self._reuse = Counter(
            "jwtauth_reuse_detected",
            "Used refresh tokens or codes presented again; their grant was revoked",
            ["kind"],
            registry=reg,
        )
        self._revocations = Counter(
            "jwtauth_revocations", "Refresh families ended by a revocation request", registry=reg
        )
        self._invalid_client = Counter(
            "jwtauth_invalid_client", "Failed client authentications", ["endpoint"], registry=reg
        )
        self._rate_limited = Counter(
            "jwtauth_rate_limited", "Requests refused by the brute-force limiter", ["endpoint"], registry=reg
        )

    def _register_flow_metrics(self, Counter: Any) -> None:
        """Create the metrics of keys, flows and the store."""
        reg = self.registry
        self._key_rotations = Counter(
            "jwtauth_key_rotations",
            "Signer changes seen by the key ring (each worker counts the change it sees)",
            registry=reg,
        )
        self._device = Counter(
            "jwtauth_device_flow",
            "Device authorization steps (RFC 8628): requested, approved, denied, expired, slow_down",
            ["outcome"],
            registry=reg,
        )
        self._store_errors = Counter(
            "jwtauth_store_errors", "Requests failed by a store error", ["endpoint"], registry=reg
        )
        self._backchannel = Counter(
            "jwtauth_backchannel_logout",
            "Back-channel logout deliveries, by outcome (delivered, retried, failed)",
            ["outcome"],
            registry=reg,
        )

    # --- per request (Observer) -----------------------------------------------------------

    def request(self, endpoint: str, grant: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        key = (endpoint, grant, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._latency.labels(endpoint, grant, str(status))
        child.observe(seconds)

    def token_issued(self, grant: str) -> None:
        """Count one access token issued outside the token endpoint (`implicit`, at /authorize).

        The token endpoint's tokens are not counted here: `TokensIssued` reads them off the
        request histogram at scrape time.
        """
        self._inc(self._issued, grant)

    def invalid_client(self, endpoint: str) -> None:
        """Count one failed client authentication."""
        self._inc(self._invalid_client, endpoint)

    def rate_limited(self, endpoint: str) -> None:
        """Count one request the brute-force limiter refused."""
        self._inc(self._rate_limited, endpoint)

    def store_error(self, endpoint: str) -> None:
        """Count one request a store error failed (an outage or a bug)."""
        self._inc(self._store_errors, endpoint)

    def _inc(self, counter: Counter, label: str) -> None:
        child = self._labelled.get((counter, label))
        if child is None:
            child = self._labelled[(counter, label)] = counter.labels(label)
        child.inc()

    # --- Events ---------------------------------------------------------------------------

    def refresh_rotated(self) -> None:
        """Count one refresh rotation."""
        self._rotations.inc()

    def reuse_detected(self, kind: str) -> None:
        """Count one reuse detection (kind: refresh_token or authorization_code)."""
        self._inc(self._reuse, kind)

    def revoked(self) -> None:
        """Count one family ended by a revocation request."""
        self._revocations.inc()

    def key_rotated(self) -> None:
        """Count one signer change."""
        self._key_rotations.inc()

    def backchannel(self, outcome: str) -> None:
        """Count one back-channel logout outcome (OpenID Connect Back-Channel Logout)."""
        self._inc(self._backchannel, outcome)

    def device_flow(self, outcome: str) -> None:
        """Count one device-request step."""
        self._inc(self._device, outcome)

    # --- exposition -----------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """Return the text exposition of every worker's metrics and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        if not self.multiprocess_dir:
            return generate_latest(issued_counted(self.registry)), CONTENT_TYPE_LATEST
        return WorkerMetrics(self.multiprocess_dir).render()


class WorkerMetrics:
    """The metrics the workers wrote to `folder`, merged: what a process that counts nothing serves.

    The management listener uses it: a `Metrics` of its own would add a file of zeros.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def render(self) -> tuple[bytes, str]:
        """Return the text exposition of every worker's metrics and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        files = MultiProcessCollector(None, path=self.folder)  # type: ignore[no-untyped-call]
        return generate_latest(issued_counted(files)), CONTENT_TYPE_LATEST


class TokensIssued:
    """A collector: `source`'s metrics, the token endpoint's 2xx histogram counts added to TOKENS_ISSUED.

    A counter beside the histogram cost a served worker ~10 µs a token (a locked, pid-checked mmap
    write; issue 20's A/B rounds), so it counts implicit tokens only; the totals are the same.
    """

    def __init__(self, source: Any) -> None:
        self.source = source

    def collect(self) -> list[Any]:
        """Return the source's metric families, TOKENS_ISSUED completed."""
        from prometheus_client.metrics_core import CounterMetricFamily

        families = list(self.source.collect())  # built afresh by each collect: ours to change
        counted: dict[str, float] = {}
        for family in (f for f in families if f.name == LATENCY):
            for name, labels, value, *_ in family.samples:
                if name.endswith("_count") and labels["endpoint"] == TOKEN and int(labels["status"]) < 300:
                    counted[labels["grant"]] = counted.get(labels["grant"], 0.0) + value
        issued = next((f for f in families if f.name == TOKENS_ISSUED), None)
        if issued is None:  # no implicit token yet, so no counter in the source
            families.append(issued := CounterMetricFamily(TOKENS_ISSUED, ISSUED_HELP, labels=["grant"]))
        for i, sample in enumerate(issued.samples):
            if sample.name.endswith("_total") and sample.labels["grant"] in counted:
                issued.samples[i] = sample._replace(value=sample.value + counted.pop(sample.labels["grant"]))
        for grant, value in counted.items():
            issued.add_sample(TOKENS_ISSUED + "_total", {"grant": grant}, value)
        return families


def issued_counted(source: Any) -> Any:
    """Return a registry that exposes `source` (a registry or collector) through TokensIssued."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(TokensIssued(source))
    return registry


def _json_text(value: str | None) -> str:
    """Return `value` as a JSON string, or null: the escaper json.dumps uses, without its set-up."""
    return "null" if value is None else encode_basestring_ascii(value)


def stdout_log(fd: int = 1) -> AccessLog:
    """Return an access log writing each line with one write(2) to `fd`.

    One unbuffered write per line: lines of several threads and worker processes sharing the
    descriptor never interleave (a line is far below PIPE_BUF), and nothing sits in a buffer
    when a worker dies. A failing write (a closed stdout) never fails the request.
    """

    def write(line: str) -> None:
        data = memoryview((line + "\n").encode())
        try:
            while data:
                data = data[os.write(fd, data) :]
        except OSError:
            pass

    return write


def request_id(incoming: str | None) -> str:
    """Return the caller's X-Request-ID if it is sane, else a fresh random one."""
    if incoming and _SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return os.urandom(8).hex()


class Observer:
    """Falcon middleware: request id, metrics and one JSON access-log line per request.

    `endpoints` maps each route's path (`req.uri_template`) to its endpoint label. The token
    resource names the grant (`req.context.grant`); the error renderers name the OAuth error
    (`req.context.error`) and flag store failures (`req.context.store_error`).
    """

    def __init__(self, metrics: Metrics, endpoints: Mapping[str, str], log: AccessLog | None = None) -> None:
        self.metrics, self.endpoints, self.log = metrics, dict(endpoints), log

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        ctx = req.context
        ctx.started = time.perf_counter()
        ctx.request_id = request_id(req.env.get("HTTP_X_REQUEST_ID"))
        ctx.grant = NO_GRANT
        ctx.error = None
        ctx.store_error = False

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object | None, req_succeeded: bool
    ) -> None:
        ctx = req.context
        seconds = time.perf_counter() - ctx.started
        resp.set_header(REQUEST_ID_HEADER, ctx.request_id)
        endpoint = self.endpoints.get(req.uri_template or "", UNMATCHED)
        status = resp.status_code
        grant = ctx.grant
        metrics = self.metrics
        metrics.request(endpoint, grant, status, seconds)
        # A token endpoint's tokens are its histogram's 2xx count (TokensIssued): no second counter.
        if status == 303:
            # RFC 6749 §4.2.2: an implicit grant's token travels in the redirect's fragment.
            if endpoint == AUTHORIZE and "#access_token=" in (resp.get_header("Location") or ""):
                metrics.token_issued("implicit")
        elif status == 401 or ctx.error == "invalid_client":
            metrics.invalid_client(endpoint)
        elif status == 429:
            metrics.rate_limited(endpoint)
        if ctx.store_error:
            metrics.store_error(endpoint)
        if self.log is not None:
            error = ctx.error
            # The audit lines of this request, when they share this sink, go in the same write.
            audit = getattr(ctx, "audit_lines", None)
            line = (
                (audit + "\n" if audit else "")
                + _LINE
                % (
                    time.time(),
                    ctx.request_id,
                    req.method if req.method in METHODS else "OTHER",
                    # A route's path is ours; any other path is the client's text, never logged.
                    req.uri_template if endpoint != UNMATCHED else UNMATCHED,
                    status,
                    seconds * 1000,
                    _json_text(getattr(ctx, "client_addr", None) or req.remote_addr),
                    _json_text(getattr(ctx, "client_id", None)),
                    endpoint,
                    grant,
                    _json_text(error),
                )
            )
            trace_id = getattr(ctx, "trace_id", None)
            if trace_id is not None:
                line = line[:-1] + _TRACE % (trace_id, ctx.span_id)
            self.log(line)
