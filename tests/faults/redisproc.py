"""Start throwaway `redis-server` processes (plain, Sentinel, Cluster) on free loopback ports.

Every process runs without persistence (`--save "" --appendonly no`) in a temp folder and is
SIGKILLed when its `Farm` closes, whatever the test did: a fault test never leaves a server
behind and never touches the shared Redis on 6379.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis

from tests.support import free_port, need

SERVICE = "mymaster"


def need_redis_server() -> None:
    """Skip on a laptop without redis-server; under CI=true that is a failure."""
    need(shutil.which("redis-server") is not None, "redis-server is not installed (apt install redis-server)")
    need(shutil.which("redis-cli") is not None, "redis-cli is not installed (apt install redis-tools)")


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, step: float = 0.05) -> None:
    """Poll `check` until it is true; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if check():
                return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class RedisProcess:
    """One redis-server (or Sentinel) process on a fixed loopback port, restartable in place."""

    def __init__(self, directory: Path, port: int, args: list[str], *, sentinel: bool = False) -> None:
        self.directory, self.port, self.args, self.sentinel = directory, port, args, sentinel
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, **kwargs: Any) -> redis.Redis:
        """Return a direct client (no pool sharing with the server under test)."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, **kwargs)

    def start(self, *, wait: bool = True) -> None:
        """Start the process; with `wait`, return once it answers PING."""
        command = ["redis-server", *self.args]
        if self.sentinel:
            command.append("--sentinel")
        log = open(self.directory / "server.log", "ab")  # noqa: SIM115  # handed to the child
        with log:
            self.proc = subprocess.Popen(
                command, cwd=self.directory, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 5) -> None:
        """Wait until the server answers PING (or fail with its log)."""

        def answers() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"redis-server on {self.port} exited:\n{self.log()}")
            with self.client(socket_connect_timeout=0.2) as conn:
                return bool(conn.ping())

        wait_until(answers, timeout=timeout, what=f"redis-server on port {self.port}")

    def kill(self) -> None:
        """SIGKILL the process (state is lost: nothing is persisted) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        """Kill and start again on the same port, empty."""
        self.kill()
        self.start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        path = self.directory / "server.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


class Farm:
    """Every Redis process of one test; `close()` kills them all."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.processes: list[RedisProcess] = []

    def _folder(self, name: str) -> Path:
        folder = self.root / f"{name}-{len(self.processes)}"
        folder.mkdir(parents=True)
        return folder

    def _spawn(self, make: Callable[[int], RedisProcess]) -> RedisProcess:
        # A free port can be taken between the check and the bind: try a few.
        for _ in range(5):
            process = make(free_port())
            self.processes.append(process)
            try:
                process.start()
            except AssertionError:
                process.kill()
                if "Address already in use" in process.log():
                    continue
                raise
            return process
        raise AssertionError("no free port for redis-server after 5 attempts")

    def server(self, *extra: str) -> RedisProcess:
        """Start a plain redis-server with no persistence."""

        def make(port: int) -> RedisProcess:
            folder = self._folder("redis")
            args = [
                "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(folder), "--daemonize", "no",
                # A replica syncs at once instead of after Redis 7's 5 s diskless-sync delay.
                "--repl-diskless-sync-delay", "0", *extra,
            ]  # fmt: skip
            return RedisProcess(folder, port, args)

        return self._spawn(make)

    def replica_of(self, primary: RedisProcess) -> RedisProcess:
        """Start a replica of `primary` and wait until it is in sync."""
        replica = self.server("--replicaof", "127.0.0.1", str(primary.port))
        with replica.client() as conn:
            wait_until(
                lambda: conn.info("replication").get("master_link_status") == "up",
                timeout=10,
                what="the replica to sync",
            )
        return replica

    def sentinel(self, primary: RedisProcess, *, quorum: int = 2) -> RedisProcess:
        """Start a Sentinel monitoring `primary` as SERVICE, with short failure timeouts."""

        def make(port: int) -> RedisProcess:
            folder = self._folder("sentinel")
            config = folder / "sentinel.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {primary.port} {quorum}\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 3000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            return RedisProcess(folder, port, [str(config)], sentinel=True)

        return self._spawn(make)

    def cluster(self, size: int = 3) -> list[RedisProcess]:
        """Start `size` cluster-enabled primaries, create the cluster and wait until it is ok."""
        nodes = []
        for _ in range(size):
            bus = free_port()  # explicit: port + 10000 can run past 65535 for ephemeral ports
            nodes.append(
                self.server(
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", "2000", "--cluster-port", str(bus),
                )
            )  # fmt: skip
        created = subprocess.run(
            ["redis-cli", "--cluster", "create", *(n.address for n in nodes), "--cluster-replicas", "0",
             "--cluster-yes"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert created.returncode == 0, created.stdout + created.stderr
        for node in nodes:
            with node.client() as conn:
                wait_until(
                    lambda conn=conn: conn.cluster("info")["cluster_state"] == "ok",  # type: ignore[misc]
                    timeout=10,
                    what="cluster_state:ok",
                )
        return nodes

    def close(self) -> None:
        """Kill every process this farm started."""
        for process in self.processes:
            with contextlib.suppress(Exception):
                process.kill()


@contextlib.contextmanager
def farm(root: Path) -> Iterator[Farm]:
    """Yield a Farm under `root`; every process is killed on the way out, even on failure."""
    need_redis_server()
    running = Farm(root)
    try:
        yield running
    finally:
        running.close()
