"""GET /metrics on the management listener: every worker's Prometheus metrics and the store's state."""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable

import falcon

from jwtauth.observability import Metrics, WorkerMetrics


class MetricsResource:
    """Serve the Prometheus text format, never cached, with `jwtauth_store_up` measured per scrape."""

    def __init__(
        self,
        metrics: Metrics | WorkerMetrics,
        store_ping: Callable[[], bool] | None = None,
        server_metrics: str | None = None,
    ) -> None:
        self.metrics, self.store_ping, self.server_metrics = metrics, store_ping, server_metrics

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        body, content_type = self.metrics.render()
        if self.store_ping is not None:
            body += _store_up(self.store_ping())
        if self.server_metrics:
            body += _fetch(self.server_metrics)
        resp.set_header("Cache-Control", "no-store")
        resp.content_type = content_type
        resp.data = body


def _store_up(up: bool) -> bytes:
    """Return the store gauge in the text format: a scrape-time PING, so no worker has to report it."""
    return (
        b"# HELP jwtauth_store_up Whether the store answered a PING at scrape time (1) or not (0)\n"
        b"# TYPE jwtauth_store_up gauge\n"
        b"jwtauth_store_up " + (b"1.0" if up else b"0.0") + b"\n"
    )


def _fetch(url: str) -> bytes:
    """Return the HTTP server's own metrics from its loopback listener; nothing if it does not answer."""
    try:
        # The URL is ours (http://127.0.0.1:PORT/metrics, made by jwtauth serve), never a client's.
        with urllib.request.urlopen(url, timeout=0.5) as answer:  # noqa: S310
            text: bytes = answer.read(1 << 20)
    except OSError as exc:
        logging.getLogger("jwtauth").warning("server metrics unavailable: %s", exc)
        return b""
    return text if text.endswith(b"\n") or not text else text + b"\n"
