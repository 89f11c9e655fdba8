"""Liveness and readiness probes, and the store's own health check."""

from __future__ import annotations

from collections.abc import Callable

import falcon

from jwtauth.keys import KeyRing

# Each dependency's state in the probes' JSON bodies.
OK = "ok"
UNAVAILABLE = "unavailable"
MISSING = "missing"


class HealthResource:
    """GET /healthz: the process answers; it checks nothing else, so it never flaps."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.set_header("Cache-Control", "no-store")
        resp.media = {"status": "ok"}

    # RFC 9110 §9.3.2: HEAD is GET without content (Falcon drops the body); probes use it.
    on_head = on_get


class ReadyResource:
    """GET /readyz: 200 while this worker can sign; the body names each dependency's state.

    Readiness is about this worker only. A store outage is shared by every worker, so taking
    them all out of the load balancer for it would also take down what needs no store (JWKS,
    metadata, client_credentials); those grants that need it answer 503 temporarily_unavailable
    on their own. The store's state is in the body ("degraded"), at /readyz/store and in the
    jwtauth_store_up metric, for alerts.
    """

    def __init__(self, keyring: KeyRing, store_ping: Callable[[], bool]) -> None:
        self.keyring, self.store_ping = keyring, store_ping

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        can_sign = self.keyring.signer() is not None
        store = OK if self.store_ping() else UNAVAILABLE
        checks = {"signing_key": OK if can_sign else MISSING, "store": store}
        status = "not ready" if not can_sign else "ready" if store == OK else "degraded"
        resp.set_header("Cache-Control", "no-store")
        resp.status = falcon.HTTP_200 if can_sign else falcon.HTTP_503
        resp.media = {"status": status, "checks": checks}

    on_head = on_get  # RFC 9110 §9.3.2


class StoreHealthResource:
    """GET /readyz/store: 200 when the store answers a PING, else 503; for alerts, never a probe."""

    def __init__(self, store_ping: Callable[[], bool]) -> None:
        self.store_ping = store_ping

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        up = self.store_ping()
        resp.set_header("Cache-Control", "no-store")
        resp.status = falcon.HTTP_200 if up else falcon.HTTP_503
        resp.media = {"store": OK if up else UNAVAILABLE}

    on_head = on_get  # RFC 9110 §9.3.2
