"""GET /metrics: this worker's (or, under `jwtauth serve`, every worker's) Prometheus metrics."""

from __future__ import annotations

import falcon

from jwtauth.observability import Metrics


class MetricsResource:
    """Serve the Prometheus text format, never cached."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        body, content_type = self.metrics.render()
        resp.set_header("Cache-Control", "no-store")
        resp.content_type = content_type
        resp.data = body
