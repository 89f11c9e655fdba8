"""The management listener of `jwtauth serve`: /metrics and the health checks on a port of their own.

granian serves one address per server, so the management port is served by a small threaded
WSGI server in a process of its own, forked from the master before granian starts (no thread
exists yet, so the fork is safe). The socket is bound in the master first, so a busy port is
a one-line startup error like the main port's. The process reads the workers' metric files
(the multiprocess folder is set before it forks), builds its own key ring and store client,
and exits when the master does: on SIGTERM with the group, or when it sees its parent gone.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import socket
import threading
from collections.abc import Callable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

PARENT_CHECK_SECONDS = 1.0


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """Log nothing per request: scrapes every few seconds would drown the server's own lines."""

    def log_message(self, format: str, *args: Any) -> None:
        """Ignore."""


def bind(host: str, port: int) -> WSGIServer:
    """Bind the management port now, in the master; raise OSError when it is taken."""
    server_class = _Server6 if ":" in host else _Server
    return make_server(host, port, _unset_app, server_class=server_class, handler_class=_QuietHandler)


def _unset_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting\n"]


@contextlib.contextmanager
def serving(server: WSGIServer, factory: Callable[[], Any]) -> Iterator[None]:
    """Serve `factory()`'s app on the bound `server` in a child process for the duration."""
    context = multiprocessing.get_context("fork")
    child = context.Process(
        target=_run, args=(server, factory, os.getpid()), name="jwtauth-management", daemon=True
    )
    child.start()
    server.server_close()  # the child owns the socket now; granian's workers never see it
    try:
        yield
    finally:
        if child.is_alive():
            child.terminate()
        child.join(timeout=5)


def _run(server: WSGIServer, factory: Callable[[], Any], parent: int) -> None:
    """Run in the child: build the app, watch the parent, serve until told to stop."""
    server.set_app(factory())

    def watch() -> None:
        while True:
            threading.Event().wait(PARENT_CHECK_SECONDS)
            if os.getppid() != parent:  # the master died without ending us (SIGKILL)
                os._exit(0)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()
    server.serve_forever(poll_interval=0.5)
