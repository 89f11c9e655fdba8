"""Run the app under granian, a Rust HTTP server for WSGI apps; `jwtauth serve` is the one way to run it.

Why granian (bench/serving-layers.md): it costs about a third of gunicorn's server CPU per
request (0.09 ms against 0.27 ms on top of the app), serves the stack-ceiling app at about
twice gunicorn's sync workers' rate, and drains in-flight requests on SIGTERM.

Each worker is a process forked from this one; it builds its own app (store pool, key ring,
metrics) by calling the factory after the fork, so no socket or lock is shared across
processes. The workers' metrics meet in a temporary folder (prometheus_client's multiprocess
mode), made before the first fork and removed at exit.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from jwtauth.cli import logs
from jwtauth.observability import MULTIPROC_ENV
from jwtauth.resources.header_limit import MAX_HEADER_BYTES

log = logging.getLogger("jwtauth")

# Python threads per worker: one can sign while another waits for Redis. With Redis on
# loopback 1 thread serves the Redis grants as fast and spends ~10% less CPU per
# client_credentials token (no GIL hand-over between threads; bench/serving-layers.md), but
# then a worker idles through every round trip, which over a network would halve what it
# serves: 2 by default, JWTAUTH_THREADS=1 for a Redis on the same host, more for one far away.
# granian's `backpressure` is left alone: it caps connections, not requests, so a low value
# leaves keep-alive clients beyond it unserved.
BLOCKING_THREADS = 2
# A worker that has not finished its requests this many seconds after SIGTERM is killed: under
# Kubernetes' default 30 s grace period, as gunicorn's graceful_timeout was.
KILL_TIMEOUT = 20




class ServeError(Exception):
    """The server could not start; the message is one line for the operator."""


def _refuse_taken(host: str, port: int) -> None:
    """Raise ServeError if a process already listens on host:port.

    On Linux granian binds every worker's listener with SO_REUSEPORT, so a second server on a
    busy port would start and silently take part of the first one's connections (another
    config, other keys). A plain bind fails on a port anyone listens on (SO_REUSEADDR only lets
    it past connections left in TIME_WAIT by a server that just stopped).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = f"{exc.strerror} (os error {exc.errno})" if exc.errno else str(exc)
            raise ServeError(f"cannot serve on {_address(host, port)}: {reason}") from None


def _address(host: str, port: int) -> str:
    """Return host:port as a URL spells it (an IPv6 address in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _loopback_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def _management(
    factory: Callable[[str | None], Any] | None, host: str, port: int | None, granian_port: int | None
) -> Iterator[None]:
    """Serve the management app on `port` while the body runs (nothing without a port)."""
    if factory is None or port is None:
        yield
        return
    from jwtauth.cli import management

    try:
        server = management.bind(host, port)
    except OSError as exc:
        raise ServeError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
    log.info("serving /metrics and health on http://%s:%d", host, port)
    upstream = f"http://127.0.0.1:{granian_port}/metrics" if granian_port else None
    with management.serving(server, lambda: factory(upstream)):
        yield


FOLDER_PREFIX = "jwtauth-metrics-"


@contextlib.contextmanager
def metrics_folder() -> Iterator[str]:
    """Hold a fresh folder for the workers' metric files in PROMETHEUS_MULTIPROC_DIR; remove it after."""
    remove_orphans(Path(tempfile.gettempdir()))
    folder = tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-")
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = folder  # inherited by every worker forked from now on
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(folder, ignore_errors=True)


def remove_orphans(directory: Path) -> None:
    """Remove the metrics folders of servers that died without cleaning up (SIGKILL).

    A folder is named after the pid of the server that made it; it is an orphan once no
    process has that pid (a reused pid keeps it: harmless, it is only left in place).
    """
    for folder in directory.glob(f"{FOLDER_PREFIX}*-*"):
        pid = folder.name[len(FOLDER_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def run(
    factory: Callable[[], Any],
    *,
    host: str,
    port: int,
    workers: int,
    management: Callable[[str | None], Any] | None = None,
    metrics_port: int | None = None,
) -> None:
    """Serve the app built by `factory` until SIGTERM/SIGINT (in-flight requests finish).

    With `metrics_port`, the app built by `management` (/metrics, health) is served there; it
    is handed the loopback URL of granian's own metrics (connections, the blocking-thread
    queue), which its /metrics appends to jwtauth's.
    """
    from granian import Granian
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings

    threads = os.environ.get("JWTAUTH_THREADS", str(BLOCKING_THREADS))
    if not threads.isdigit() or not 1 <= int(threads) <= 64:
        raise ServeError(f"JWTAUTH_THREADS must be a number from 1 to 64, not {threads[:20]!r}")
    _refuse_taken(host, port)
    granian_metrics = _loopback_port() if management and metrics_port else None
    with metrics_folder(), _management(management, host, metrics_port, granian_metrics):
        server = Granian(
            "jwtauth",  # a label only: the loader below builds the app
            address=host,
            port=port,
            interface=Interfaces.WSGI,
            workers=workers,
            blocking_threads=int(threads),
            websockets=False,
            workers_kill_timeout=KILL_TIMEOUT,
            # A crashed worker is replaced; granian still exits on a crash loop (< 5.5 s apart).
            respawn_failed_workers=True,
            # granian's own lines go to stderr in jwtauth's format (text or JSON, cli/logs.py);
            # stdout carries only the JSON access and audit lines.
            log_dictconfig=logs.granian_config(*logs.choose(os.environ)),
            log_access=False,  # jwtauth writes its own JSON access line (observability.py)
            # The request head may not outgrow the app's own cap (issue 18): granian buffers no
            # more than this (its minimum, 8 KiB, plus the cap) and refuses a larger head.
            http1_settings=HTTP1Settings(max_buffer_size=MAX_HEADER_BYTES + 8192),
            # granian's own metrics, on loopback only: the management listener re-serves them.
            metrics_enabled=granian_metrics is not None,
            metrics_address="127.0.0.1",
            metrics_port=granian_metrics or 9090,
            metrics_scrape_interval=5,
        )
        log.info("serving on http://%s:%d with %d worker(s)", host, port, workers)
        # Workers are forked, so the loader below may be a closure over the parsed settings.
        # (Python 3.14 makes Linux default to forkserver, which granian turns into spawn.)
        multiprocessing.set_start_method("fork", force=True)
        try:
            server.serve(target_loader=lambda _target: factory())  # in each worker, after the fork
        except RuntimeError as exc:  # granian's bind errors carry a Rust backtrace: keep line one
            raise ServeError(f"cannot serve on {_address(host, port)}: {str(exc).splitlines()[0]}") from None
