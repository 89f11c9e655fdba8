"""Run the app under a production WSGI server; `jwtauth serve` is the one way to run it."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):  # type: ignore[misc]  # gunicorn is untyped
    def __init__(self, factory: Callable[[], Any], options: dict[str, Any]) -> None:
        self.factory, self.options = factory, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                self.cfg.set(key, value)

    def load(self) -> Any:
        # Called in each worker after fork: every worker builds its own app, store pool and
        # key ring, so no socket or lock is shared across processes.
        return self.factory()


def run(factory: Callable[[], Any], *, host: str, port: int, workers: int) -> None:
    """Serve the app built by `factory` until SIGTERM/SIGINT (in-flight requests finish)."""
    logging.getLogger("jwtauth").info("serving on http://%s:%d with %d worker(s)", host, port, workers)
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": int(os.environ.get("JWTAUTH_THREADS", "4")),
        "keepalive": 5,
        "graceful_timeout": 20,
        "timeout": 30,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "jwtauth",
        # No runtime control socket: one fewer way in, and no clash between instances.
        "control_socket_disable": True,
        # Limits against oversized request lines and headers before the app sees them.
        "limit_request_line": 8190,
        "limit_request_fields": 100,
        "limit_request_field_size": 8190,
    }
    _Gunicorn(factory, options).run()
