"""Pre-fork launcher for servers without a multi-worker CLI: bjoern, meinheld.

    /tmp/altserve/bin/python -m bench.alt_serve bjoern 127.0.0.1 8000

Listens once, forks 2 workers that share the socket, and waits; SIGTERM/SIGINT are passed on
to the workers. Runs from a throwaway venv, never the project's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from types import FrameType

from bench.ceiling_app import app

WORKERS = 2


def main() -> None:
    server, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if server == "bjoern":
        import bjoern  # type: ignore[import-not-found]

        bjoern.listen(app, host, port)
        run = bjoern.run
    elif server == "meinheld":
        from meinheld import server as mserver  # type: ignore[import-not-found]

        mserver.listen((host, port))
        mserver.set_access_logger(None)

        def run() -> None:
            mserver.run(app)
    else:
        raise SystemExit(f"unknown server {server}")

    children: list[int] = []
    for _ in range(WORKERS):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            run()
            os._exit(0)
        children.append(pid)

    def forward(signum: int, _frame: FrameType | None) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for pid in children:
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
