"""Fault 5: a worker SIGKILLed mid-load; the others keep serving and no state is half-written.

Three clients run password logins and refresh chains against two workers; one worker is
killed in the middle. A client whose request died with the worker retries the same refresh
token, as a client does after a lost response: it gets the successor (a replay inside the
grace period) or a fresh rotation, never reuse detection. Afterwards every chain's newest
token still rotates, and every older token is a clean invalid_grant.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.faults import calls
from tests.faults.redisproc import Farm

pytestmark = [pytest.mark.e2e, pytest.mark.redis]


def workers_of(pid: int) -> set[int]:
    """Return the child process ids of `pid` (the server's workers)."""
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        children |= {int(child) for child in (task / "children").read_text().split()}
    return children


class Client(threading.Thread):
    """Log in, then rotate the refresh token in a loop until told to stop."""

    def __init__(self, base: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)  # never outlives a failed test
        self.base, self.stop = base, stop
        self.chain: list[str] = []  # every refresh token handed out, in order
        self.lost = 0  # requests that died with the worker (connection reset, no answer)
        self.served = 0
        self.error: BaseException | None = None

    def call(self, send: Callable[[], requests.Response]) -> dict[str, Any]:
        """Send until answered: a request lost with its worker is sent again, unchanged."""
        deadline = time.monotonic() + 5
        while True:
            try:
                response = send()
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                self.lost += 1  # no answer, or the worker died halfway through the body
                if time.monotonic() > deadline:
                    raise
                continue
            self.served += 1
            return calls.ok(response)

    def run(self) -> None:
        try:
            self.chain.append(self.call(lambda: calls.password(self.base))["refresh_token"])
            while not self.stop.is_set():
                token = self.chain[-1]
                body = self.call(lambda token=token: calls.refresh(self.base, token))  # type: ignore[misc]
                self.chain.append(body["refresh_token"])
        except BaseException as exc:  # reported by the test thread
            self.error = exc


def served(clients: list[Client]) -> int:
    """Return how many answers the clients got; raise the first client's error at once."""
    for client in clients:
        if client.error is not None:
            raise client.error
    return sum(client.served for client in clients)


def test_a_worker_killed_mid_load(redis_farm: Farm, serve: Callable[..., Any]) -> None:
    redis = redis_farm.server()
    env = {"JWTAUTH_REDIS_URL": redis.url, "JWTAUTH_REDIS_PREFIX": "jwtauth-fault:"}
    with serve(workers=2, env=env) as server:
        pid = server.proc.pid
        before = calls.until(
            lambda: len(workers_of(pid)) == 2 and workers_of(pid), timeout=5, what="two workers"
        )
        stop = threading.Event()
        clients = [Client(server.base, stop) for _ in range(4)]
        for client in clients:
            client.start()
        calls.until(lambda: served(clients) > 20 and all(len(c.chain) > 5 for c in clients), timeout=10,
                    what="load on both workers")  # fmt: skip
        victim = min(before)
        # Frozen first, so requests it had taken are in flight when it dies (a bare SIGKILL
        # between two requests proves less); then killed with no chance to finish them.
        os.kill(victim, signal.SIGSTOP)
        time.sleep(0.3)
        os.kill(victim, signal.SIGKILL)
        served_at_kill = served(clients)
        # The survivor keeps answering while granian respawns the killed worker.
        calls.until(lambda: served(clients) > served_at_kill + 30, timeout=5, what="the other worker serving")
        after = calls.until(
            lambda: len(workers_of(pid) - {victim}) == 2 and workers_of(pid), timeout=10, what="a new worker"
        )
        assert victim not in after and len(after & before) == 1
        time.sleep(0.3)  # a little load on the replacement too
        stop.set()
        for client in clients:
            client.join(timeout=10)
            assert not client.is_alive()
            if client.error is not None:
                raise client.error
        # A few requests die with the worker (in flight, or accepted and queued in it); a
        # survivor that also dropped requests would lose many more.
        assert sum(c.lost for c in clients) <= 2 * len(clients), [c.lost for c in clients]

        # No half-written family: each chain's newest token rotates, older ones are refused.
        for client in clients:
            assert len(set(client.chain)) == len(client.chain) > 5
            calls.ok(calls.refresh(server.base, client.chain[-1]))
        for client in clients:
            calls.assert_invalid_grant(calls.refresh(server.base, client.chain[-3]))
    # And in Redis: every key expires, every family hash is whole.
    fields = {b"client", b"subject", b"scope", b"audience", b"gen", b"cur", b"abs_exp", b"idle_exp"}
    with redis.client() as conn:
        keys = list(conn.scan_iter(match="jwtauth-fault:*"))
        assert keys and all(conn.pttl(key) > 0 for key in keys)
        for key in conn.scan_iter(match="jwtauth-fault:{f:*}", _type="hash"):
            assert fields <= set(conn.hkeys(key)), key
