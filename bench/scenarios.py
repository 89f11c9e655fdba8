"""The scenarios of make bench on a running jwtauth server (bench/run.py runs them)."""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from bench import assertions, memory
from bench.dpop import write_proofs
from bench.harness import (
    FLOOD,
    FLOOD_BASIC,
    MEMORY_TOKENS,
    PASSWORD,
    PASSWORD_BODY,
    TOKENS,
    USER,
    Ceilings,
    Result,
    Server,
    _short,
    combine,
    fixed,
    measure,
    post_form,
    rounds,
    wrk,
)
from bench.serving import (
    parse_wrk,
)

# --- scenarios ------------------------------------------------------------------------------------


def refresh_tokens(server: Server, count: int, path: Path) -> Path:
    """Start `count` refresh families by password logins; write their tokens, one a line."""
    body = {"grant_type": "password", "username": USER, "password": PASSWORD}
    path.write_text("".join(post_form(server, body)["refresh_token"] + "\n" for _ in range(count)))
    return path


def issue_codes(store: Any, prefix: str, count: int, path: Path, *, oidc: bool = False) -> Path:
    """Issue `count` authorization codes straight into Redis, as the authorize page would.

    `oidc`: codes of an OpenID Connect sign-in in a browser session (scope `openid`, a nonce,
    a sid), so the exchange also signs an id_token and links the family to the session.
    """
    from jwtauth.store import CodeRecord, CodeStore

    codes = CodeStore(store, prefix=prefix, access_token_ttl=960)
    record = CodeRecord(
        client_id="testclient",
        redirect_uri=None,
        scope="openid read write" if oidc else "read write",
        subject=USER,
        code_challenge=None,
        code_challenge_method=None,
        auth_time=time.time(),
        audience=("https://api.example.com",),
        nonce="n-0S6_WzA2Mj" if oidc else None,
        amr=("pwd",) if oidc else (),
        sid=uuid.uuid4().hex if oidc else None,
    )
    now = time.time()
    path.write_text("".join(codes.issue(record, ttl=600, now=now) + "\n" for _ in range(count)))
    return path


def issue_device_codes(store: Any, prefix: str, count: int, path: Path) -> Path:
    """Start `count` device requests straight into Redis, as the device endpoint would."""
    from jwtauth.oauth.device import new_user_code
    from jwtauth.store.device import DeviceStore

    devices = DeviceStore(store, prefix=prefix, redeemed_ttl=960)
    now = time.time()
    codes = (
        devices.issue(
            client_id="testclient", scope=("read",), audience="https://api.example.com",
            now=now, ttl=600, interval=5, new_user_code=new_user_code,
        ).device_code
        for _ in range(count)
    )  # fmt: skip
    path.write_text("".join(code + "\n" for code in codes))
    return path


def device_polls(
    server: Server, args: argparse.Namespace, store: Any, prefix: str, work: Path, expected_rps: float
) -> Result:
    """Poll device requests nobody approves, each once: one Redis round trip per poll.

    The expected answer is a 400 authorization_pending; the errors count anything else.
    """
    polls = lambda n, tag: issue_device_codes(store, prefix, n, work / f"device-{tag}.txt")  # noqa: E731
    warm_stateful(server, args, "device", polls, expected_rps)
    return stateful("device_poll (pending)", server, args, "device", polls, expected_rps)


def stateful(
    name: str, server: Server, args: argparse.Namespace, mode: str, make: Any, expected_rps: float
) -> Result:
    """Measure a scenario whose every request consumes a token or code made beforehand."""
    # measure() never warms up a run that consumes a file: warm_stateful does, with its own.
    main = make(max(int(expected_rps * args.duration * 1.5), 4000), "main")
    return measure(name, server, TOKENS, args, _consuming(mode, main))


def warm_stateful(
    server: Server, args: argparse.Namespace, mode: str, make: Any, expected_rps: float
) -> None:
    """Warm a stateful scenario up with tokens or codes of its own."""
    if args.warmup > 0:
        warm = make(max(int(expected_rps * args.warmup * 1.5), 2000), "warmup")
        wrk(server.base + TOKENS, args.warmup, args, _consuming(mode, warm))


def _consuming(mode: str, path: Path) -> dict[str, str]:
    """wrk's environment for requests that each use up one line of `path` (bench/wrk.lua)."""
    # An assertion is the client's credential: no Basic header beside it (RFC 6749 §2.3).
    return {**fixed("POST", auth=mode != "assertion"), "BENCH_MODE": mode, "BENCH_FILE": str(path)}


def run_es256(
    server: Server,
    args: argparse.Namespace,
    store: Any,
    prefix: str,
    work: Path,
    report: dict[str, Any],
    ceilings: Ceilings,
) -> None:
    """Every scenario on the ES256 server, plus the workers' memory across 100k tokens."""
    results: dict[str, Result] = report["jwtauth"]
    cc_env = fixed("POST", "grant_type=client_credentials", auth=True)
    only = set(args.only or [])

    def wanted(name: str) -> bool:
        return not only or name in only

    if wanted("client_credentials"):
        name = "client_credentials ES256"
        wrk(server.base + TOKENS, args.warmup, args, cc_env)
        before = memory.rss_of(server.workers())
        results[name] = rounds(name, lambda a: measure(name, server, TOKENS, a, cc_env), ceilings, args)
        issued = results[name].requests
        while issued < MEMORY_TOKENS and not only:  # until 100k tokens passed through the workers
            issued += int(parse_wrk(wrk(server.base + TOKENS, 4, args, cc_env))["requests"])
        report["memory"] = {"tokens": issued, "before": before, "after": memory.rss_of(server.workers())}
        ceilings.time_passed()
    if wanted("client_credentials_jwt"):
        # Beside client_secret_basic above: private_key_jwt costs a signature check and a SET NX.
        signed = lambda n, tag: assertions.sign_assertions(  # noqa: E731
            work / "bench-jwt.pem", server.base, n, work / f"assertions-{tag}.txt"
        )
        basic = results.get("client_credentials ES256")
        expected_cc = basic.rps if basic is not None else 3000.0
        warm_stateful(server, args, "assertion", signed, expected_cc)
        name = "client_credentials private_key_jwt"
        results[name] = ceilings.mark(stateful(name, server, args, "assertion", signed, expected_cc))
    if wanted("password"):
        env = fixed("POST", PASSWORD_BODY, auth=True)
        wrk(server.base + TOKENS, args.warmup, args, env)
        results["password"] = rounds(
            "password", lambda a: measure("password", server, TOKENS, a, env), ceilings, args
        )
    expected = results["password"].rps if "password" in results else 3000.0
    if wanted("refresh_token"):
        # More families than connections: wrk builds one request to check the script before
        # it starts (bench/wrk.lua), and the token it takes is never sent.
        families = lambda _n, tag: refresh_tokens(server, 2 * args.connections, work / f"refresh-{tag}.txt")  # noqa: E731
        warm_stateful(server, args, "refresh", families, expected)
        results["refresh_token"] = rounds(
            "refresh_token",
            lambda a: stateful("refresh_token", server, a, "refresh", families, expected),
            ceilings,
            args,
        )
    if wanted("authorization_code"):
        codes = lambda n, tag: issue_codes(store, prefix, n, work / f"codes-{tag}.txt")  # noqa: E731
        warm_stateful(server, args, "code", codes, expected)
        results["authorization_code"] = ceilings.mark(
            stateful("authorization_code", server, args, "code", codes, expected)
        )
    if wanted("authorization_code_oidc"):
        # Beside the plain exchange: the same code flow with `openid`, so two signatures (the
        # access token and the id_token) and the family's link to the browser session.
        oidc_codes = lambda n, tag: issue_codes(store, prefix, n, work / f"oidc-codes-{tag}.txt", oidc=True)  # noqa: E731
        warm_stateful(server, args, "code", oidc_codes, expected)
        name = "authorization_code + id_token"
        results[name] = ceilings.mark(stateful(name, server, args, "code", oidc_codes, expected))
    if wanted("device_poll"):
        results["device_poll"] = ceilings.mark(device_polls(server, args, store, prefix, work, expected))
    if wanted("introspection"):
        access = post_form(server, {"grant_type": "password", "username": USER, "password": PASSWORD})
        env = fixed("POST", "token=" + access["access_token"], auth=True)
        results["introspection"] = ceilings.mark(
            measure("introspection", server, "/api/v1/introspect", args, env)
        )
    if wanted("client_auth_flood"):
        # Every answer is meant to be an error: 401 for the first few, then 429 before any scrypt.
        env = {**fixed("POST", "grant_type=client_credentials"), "BENCH_AUTH": FLOOD_BASIC}
        results[FLOOD] = ceilings.mark(measure(FLOOD, server, TOKENS, args, env))
    if wanted("dpop"):
        report["dpop"] = dpop_beside_plain(server, args, work, results, ceilings)
    for key, name, path in (
        ("jwks", "JWKS GET", "/jwks"),
        ("metadata", "metadata GET", "/.well-known/oauth-authorization-server"),
    ):
        if wanted(key):
            wrk(server.base + path, args.warmup, args, fixed())

            def once(a: argparse.Namespace, n: str = name, p: str = path) -> Result:
                return measure(n, server, p, a, fixed())

            results[key] = rounds(name, once, ceilings, args)


DPOP_NAME, PLAIN_BESIDE = "client_credentials ES256 + DPoP", "client_credentials ES256 (beside DPoP)"


def dpop_beside_plain(
    server: Server, args: argparse.Namespace, work: Path, results: dict[str, Result], ceilings: Ceilings
) -> list[float]:
    """Measure DPoP-bound client_credentials in rounds alternating with plain ones (P D P D P D P).

    Each DPoP round is divided by the mean of the plain rounds on either side of it (the box's
    speed drifts, as with the stack ceiling); returns those ratios. Every DPoP request carries a
    proof of its own, signed beforehand (bench/dpop.py) and checked by the server: signature,
    claims, and the jti's one-time marker in Redis.
    """
    plain_env = fixed("POST", "grant_type=client_credentials", auth=True)
    metadata = requests.get(server.base + "/.well-known/oauth-authorization-server", timeout=10).json()
    short = _short(args, args.round_seconds)

    def proofs(rps: float, seconds: float, tag: str) -> dict[str, str]:
        # Sized from the plain rate just measured: DPoP is slower, so the file never runs dry.
        count = max(int(rps * seconds * 1.3), 2000)
        path = write_proofs(metadata["token_endpoint"], count, work / f"dpop-{tag}.txt")
        return {**plain_env, "BENCH_MODE": "dpop", "BENCH_FILE": str(path)}

    wrk(server.base + TOKENS, args.warmup, args, plain_env)
    plain = [measure(PLAIN_BESIDE, server, TOKENS, short, plain_env)]
    if args.warmup > 0:
        wrk(server.base + TOKENS, args.warmup, args, proofs(plain[0].rps, args.warmup, "warmup"))
    dpop: list[Result] = []
    for k in range(args.rounds):
        env = proofs(plain[-1].rps, args.round_seconds, str(k))
        dpop.append(measure(DPOP_NAME, server, TOKENS, short, env))
        plain.append(measure(PLAIN_BESIDE, server, TOKENS, short, plain_env))
    ratios = [d.rps / ((plain[k].rps + plain[k + 1].rps) / 2) for k, d in enumerate(dpop)]
    each = " ".join(f"{x:.2f}" for x in ratios)
    print(f"  DPoP: {statistics.median(ratios):.2f}x plain client_credentials (rounds: {each})", flush=True)
    results[PLAIN_BESIDE] = ceilings.mark(combine(PLAIN_BESIDE, plain, []))
    results[DPOP_NAME] = ceilings.mark(combine(DPOP_NAME, dpop, []))
    return ratios
