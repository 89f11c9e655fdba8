"""A loopback TCP proxy in front of Redis that loses or delays the reply to chosen commands.

A reply lost on the way back is the one fault a retry cannot tell apart from a request that
never arrived: the command ran, the caller does not know. The proxy makes it on demand.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

Match = Callable[[bytes], bool]


@dataclass
class Fault:
    """What to do with the reply to a request chunk that `match`es, `times` times."""

    match: Match
    times: int
    delay: float | None = None  # None: drop the reply and close the client's connection


class ReplyFaults:
    """Forward 127.0.0.1:port to an upstream Redis; apply armed faults to replies."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)  # so the accept loop sees close()
        self.port: int = self.listener.getsockname()[1]
        self.faults: list[Fault] = []
        self.applied = 0
        self.lock = threading.Lock()
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def arm(self, match: Match, *, times: int = 1, delay: float | None = None) -> None:
        """Lose (or, with `delay`, hold back) the reply to the next `times` matching requests."""
        with self.lock:
            self.faults.append(Fault(match, times, delay))

    def _take_fault(self, chunk: bytes) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.match(chunk):
                    fault.times -= 1
                    self.applied += 1
                    return fault
        return None

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        # One thread per connection sees both directions, so it knows which reply answers the
        # armed request: redis-py waits for each reply before it sends the next command.
        pending: Fault | None = None
        with client, upstream:
            while not self.closed.is_set():
                readable, _, _ = select.select([client, upstream], [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        pending = pending or self._take_fault(data)
                        upstream.sendall(data)
                    elif pending is None:
                        client.sendall(data)
                    elif pending.delay is None:
                        return  # the command ran; its reply is lost with the connection
                    else:
                        time.sleep(pending.delay)
                        pending = None
                        with contextlib.suppress(OSError):  # the caller may have given up
                            client.sendall(data)

    def close(self) -> None:
        self.closed.set()
        self.listener.close()


@contextlib.contextmanager
def reply_faults(upstream_port: int) -> Iterator[ReplyFaults]:
    """Yield a running proxy; close it afterwards."""
    proxy = ReplyFaults(upstream_port)
    try:
        yield proxy
    finally:
        proxy.close()


def evalsha_on(family_id: str) -> Match:
    """Match the rotation script's call on one refresh family (its keys carry the family id)."""
    return lambda chunk: b"EVALSHA" in chunk and f"{{f:{family_id}}}".encode() in chunk
