"""Liveness and readiness probes."""

from __future__ import annotations

from collections.abc import Callable

import falcon

from jwtauth.keys import KeyRing


class HealthResource:
    """GET /healthz: the process answers; it checks nothing else, so it never flaps."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.set_header("Cache-Control", "no-store")
        resp.media = {"status": "ok"}

    # RFC 9110 §9.3.2: HEAD is GET without content (Falcon drops the body); probes use it.
    on_head = on_get


class ReadyResource:
    """GET /readyz: ready when a key can sign and the store answers."""

    def __init__(self, keyring: KeyRing, store_ping: Callable[[], bool]) -> None:
        self.keyring, self.store_ping = keyring, store_ping

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        checks = {"signing_key": self.keyring.signer() is not None, "store": self.store_ping()}
        resp.set_header("Cache-Control", "no-store")
        resp.status = falcon.HTTP_200 if all(checks.values()) else falcon.HTTP_503
        resp.media = {"status": "ready" if all(checks.values()) else "not ready", "checks": checks}

    on_head = on_get  # RFC 9110 §9.3.2
