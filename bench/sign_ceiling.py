"""Signing ceiling: access tokens per second that one process signs, no HTTP.

Same key type, claims and headers as bench/ceiling_app.py. Each measurement runs for a fixed
wall-clock time (``--seconds``, default 3) and prints ``NAME per-second``. ``--wsgi`` adds one
more row: the whole ceiling app called as a WSGI callable in-process (Falcon routing, form
parsing, Basic auth check, signing, JSON), i.e. the per-request cost before any server.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from typing import Any

import jwt

from bench.ceiling_app import ALGORITHMS, claims, generate_key


def per_second(fn: Callable[[], object], seconds: float) -> float:
    fn()  # warm up
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(50):
            fn()
        n += 50
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def signer(alg: str) -> Callable[[], str]:
    key = generate_key(alg)
    headers = {"kid": f"bench-{alg.lower()}", "typ": "at+jwt"}
    return lambda: jwt.encode(claims(), key, algorithm=alg, headers=headers)


def wsgi_call() -> Callable[[], object]:
    """One in-process request to bench.ceiling_app.app (its own key, CEILING_ALG)."""
    from bench.ceiling_app import app

    body = b"grant_type=client_credentials&scope=read+write"
    base: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/tokens/",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": "Basic dGVzdGNsaWVudDp0ZXN0cGFzc3dvcmQ=",
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
    }

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None, /
    ) -> Callable[[bytes], object]:
        assert status.startswith("200"), status
        return lambda _data: None

    def call() -> object:
        return b"".join(app({**base, "wsgi.input": io.BytesIO(body)}, start_response))

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--wsgi", action="store_true", help="also time the WSGI app in-process")
    parser.add_argument("algs", nargs="*", default=list(ALGORITHMS))
    args = parser.parse_args()
    for alg in args.algs:
        print(f"{alg} {per_second(signer(alg), args.seconds):.0f}")
    if args.wsgi:
        print(f"wsgi-app {per_second(wsgi_call(), args.seconds):.0f}")


if __name__ == "__main__":
    main()
