"""Rotation under load: a real two-worker server, `jwtauth keys rotate` in between, zero failures.

A thread asks for client_credentials tokens continuously. Each token goes at once to a verifier
running in another process (jwtauth.verify.Verifier against the server's /jwks, caching it for
the served max-age and refetching on an unknown kid as its own rules say). Meanwhile the keys
rotate three times — to EdDSA (ES256 signed before), an emergency `--now` to RS256, then to
PS256 — with a corrupt file lying in keys/ all along. Every token must verify when issued, and
again at the end, after every rotation, while it has not expired.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import jwt
import pytest
import requests

from tests.helpers import FIXTURES, ROOT
from tests.support import REDIS_URL, Server

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

AUDIENCE = "https://api.example.com"
JWKS_MAX_AGE = PUBLISH_AHEAD = 2
ACCESS_TOKEN_TTL = 30

# The resource server: a separate process that knows only the issuer URL and the audience.
VERIFIER = """
import sys

import jwt

from jwtauth import verify

issuer, audience, results_path = sys.argv[1:4]
fetches = []

def counting_fetch(url):
    fetches.append(url)
    return verify.urllib_fetch(url)

# Short cache bounds so that the server's max-age=2 is honoured as served, not clamped to 60 s.
verifier = verify.Verifier(
    issuer=issuer, audience=audience, fetch=counting_fetch,
    refetch_interval=0.5, min_max_age=1.0, default_max_age=2.0,
)
with open(results_path, "w") as results:
    for line in sys.stdin:
        phase, token = line.split()
        kid = jwt.get_unverified_header(token).get("kid")
        try:
            verifier.verify(token)
            results.write(f"{phase} ok {kid}\\n")
        except verify.InvalidToken as exc:
            results.write(f"{phase} FAIL {kid} {exc.reason}\\n")
        results.flush()
    results.write(f"fetches {len(fetches)}\\n")
"""


def short_config(tmp_path: Path) -> Path:
    """Write the demo fixtures with a 2 s JWKS max-age and publish-ahead, and 30 s tokens."""
    text = FIXTURES.read_text()
    for key, value in (
        ("access_token", ACCESS_TOKEN_TTL),
        ("jwks_max_age", JWKS_MAX_AGE),
        ("publish_ahead", PUBLISH_AHEAD),
    ):
        text, count = re.subn(rf"(?m)^{key} = \d+", f"{key} = {value}", text)
        assert count == 1, key
    path = tmp_path / "rotation.toml"
    path.write_text(text)
    return path


class Issuer:
    """A thread that asks for tokens until stopped and hands each to the verifier at once."""

    def __init__(self, base: str, verifier_stdin: IO[str]) -> None:
        self.base, self.stdin = base, verifier_stdin
        self.tokens: list[str] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        session = requests.Session()
        deadline = time.monotonic() + 60  # bounded even if the test forgets to stop it
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                response = session.post(
                    self.base + "/api/v1/tokens",
                    auth=("testclient", "testpassword"),
                    data={"grant_type": "client_credentials"},
                    timeout=5,
                )
                if response.status_code != 200:
                    self.errors.append(f"{response.status_code} {response.text}")
                else:
                    token = response.json()["access_token"]
                    self.tokens.append(token)
                    self.stdin.write(f"1 {token}\n")
                    self.stdin.flush()
            except Exception as exc:  # any failure must show in the test, not kill the thread silently
                self.errors.append(repr(exc))
            time.sleep(0.02)

    def latest_kid(self) -> str | None:
        return jwt.get_unverified_header(self.tokens[-1])["kid"] if self.tokens else None

    @contextlib.contextmanager
    def running(self) -> Iterator[Issuer]:
        self.thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            self.thread.join(timeout=10)


def rotate(config: Path, keys_dir: Path, *args: str) -> str:
    """Run `jwtauth keys rotate` as an operator would; return the new kid."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JWTAUTH_")}
    done = subprocess.run(
        [sys.executable, "-m", "jwtauth", "keys", "--config", str(config), "--dir", str(keys_dir),
         "rotate", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    match = re.search(r"key (\S+): published now", done.stdout)
    assert match, done.stdout
    return match.group(1)


def wait_until_signing(issuer: Issuer, kid: str, limit: float) -> float:
    """Wait until tokens carry `kid`; return how long it took."""
    start = time.monotonic()
    while issuer.latest_kid() != kid:
        assert time.monotonic() - start < limit, f"{kid} did not start signing within {limit} s"
        assert not issuer.errors, issuer.errors[:3]
        time.sleep(0.05)
    return time.monotonic() - start


def test_rotations_under_load_never_fail_a_verification(
    tmp_path: Path,
    keys_dir: Path,
    real_redis: tuple[Any, str],
    serve: Callable[..., contextlib.AbstractContextManager[Server]],
) -> None:
    _, prefix = real_redis
    config = short_config(tmp_path)
    script = tmp_path / "verifier.py"
    script.write_text(VERIFIER)
    results = tmp_path / "results.txt"
    env = {"JWTAUTH_REDIS_URL": REDIS_URL, "JWTAUTH_REDIS_PREFIX": prefix}
    with serve(workers=2, config=config, env=env) as server:
        jwks = requests.get(server.base + "/jwks", timeout=5)
        assert jwks.headers["Cache-Control"] == f"public, max-age={JWKS_MAX_AGE}"
        verifier = subprocess.Popen(
            [sys.executable, str(script), server.base, AUDIENCE, str(results)],
            cwd=ROOT, stdin=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert verifier.stdin is not None
        issuer = Issuer(server.base, verifier.stdin)
        try:
            with issuer.running():
                first = next(k["kid"] for k in jwks.json()["keys"])
                wait_until_signing(issuer, first, 5)
                # A broken file in keys/ is logged and skipped; serving goes on.
                (keys_dir / "corrupt.json").write_text('{"kid": "half-writ')
                # Normal rotations sign after publish_ahead + propagation (2 + 2 s), --now after 2 s.
                waits = {}
                for args in (("--alg", "EdDSA"), ("--now", "--alg", "RS256"), ("--alg", "PS256")):
                    kid = rotate(config, keys_dir, *args)
                    waits[args] = wait_until_signing(issuer, kid, 10)
                time.sleep(0.5)  # a few more tokens from the last key
            assert issuer.errors == []
            assert "skipping key file" in server.output()
            # Every token again, after all the rotations: none has expired yet (30 s).
            for token in issuer.tokens:
                verifier.stdin.write(f"2 {token}\n")
        finally:
            verifier.stdin.close()
            verifier.wait(timeout=30)
    assert verifier.returncode == 0
    lines = results.read_text().splitlines()
    fetches = int(lines.pop().split()[1])
    failures = [line for line in lines if " FAIL " in line]
    assert failures == []
    assert len(lines) == 2 * len(issuer.tokens) > 100
    kids = {line.split()[2] for line in lines}
    algs = {jwt.get_unverified_header(t)["alg"] for t in issuer.tokens}
    assert len(kids) == 4 and algs == {"ES256", "EdDSA", "RS256", "PS256"}
    # The normal rotations waited at least publish_ahead; the emergency one did not.
    assert min(waits[("--alg", "EdDSA")], waits[("--alg", "PS256")]) >= PUBLISH_AHEAD
    # The verifier refreshed on schedule (max-age 2 s), not per token.
    assert 3 <= fetches <= len(issuer.tokens) // 5
