"""The scenarios of make bench on a running jwtauth server (bench/run.py runs them)."""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
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
from bench.serving import parse_wrk


def refresh_tokens(server: Server, count: int, path: Path) -> Path:
    """Start `count` refresh families by password logins; write their tokens, one a line."""
    body = {"grant_type": "password", "username": USER, "password": PASSWORD}
    path.write_text("".join(post_form(server, body)["refresh_token"] + "\n" for _ in range(count)))
    return path


def issue_codes(
    server: Server, store: Any, prefix: str, count: int, path: Path, *, oidc: bool = False
) -> Path:
    """Issue `count` authorization codes straight into Redis, as the authorize page would.

    With the refresh family written ahead (jwtauth.grants.code_family), under the server's
    settings. `oidc`: codes of an OpenID Connect sign-in in a browser session (scope `openid`,
    a nonce, a sid), so the exchange also signs an id_token and links the family to the session.
    """
    from jwtauth.config.settings import load_settings
    from jwtauth.grants.code_family import ahead_of_code
    from jwtauth.store import CodeRecord, CodeStore, RefreshStore
    from jwtauth.store.sessions import SessionMarks

    settings = load_settings(server.config, env={})
    client = next(c for c in settings.clients if c.client_id == "testclient")
    pepper = server.pepper
    codes = CodeStore(store, pepper=pepper, prefix=prefix, access_token_ttl=960)
    refresh = RefreshStore(store, pepper=pepper, prefix=prefix)
    sessions = SessionMarks(store, pepper=pepper, prefix=prefix, session_ttl=settings.session_ttl)
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
    ahead = ahead_of_code(settings, client, refresh, sessions, record, now=now, ttl=600)
    path.write_text("".join(codes.issue(record, ttl=600, now=now, ahead=ahead) + "\n" for _ in range(count)))
    return path


def issue_device_codes(store: Any, prefix: str, count: int, path: Path, *, pepper: Any) -> Path:
    """Start `count` device requests straight into Redis, as the device endpoint would."""
    from jwtauth.oauth.device import new_user_code
    from jwtauth.store.device import DeviceStore

    devices = DeviceStore(store, pepper=pepper, prefix=prefix, redeemed_ttl=960)
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
    def polls(n: int, tag: str) -> Path:
        return issue_device_codes(store, prefix, n, work / f"device-{tag}.txt", pepper=server.pepper)

    expected_rps = warm_stateful(server, args, "device", polls, expected_rps)
    return stateful("device_poll (pending)", server, args, "device", polls, expected_rps)


def stateful(
    name: str, server: Server, args: argparse.Namespace, mode: str, make: Any, expected_rps: float
) -> Result:
    """Measure a scenario whose every request consumes a token or code made beforehand."""
    # measure() never warms up a run that consumes a file: warm_stateful does, with its own.
    main = make(max(int(expected_rps * args.duration * 1.5), 4000), "main")
    return measure(name, server, TOKENS, args, _consuming(mode, main))


def stateful_rounds(name: str, scene: Scene, mode: str, make: Any, expected_rps: float) -> Result:
    """Warm a stateful scenario up, then measure it in rounds alternating with the ceiling."""
    server, args = scene.server, scene.args
    expected_rps = warm_stateful(server, args, mode, make, expected_rps)
    return rounds(name, lambda a: stateful(name, server, a, mode, make, expected_rps), scene.ceilings, args)


def warm_stateful(
    server: Server, args: argparse.Namespace, mode: str, make: Any, expected_rps: float
) -> float:
    """Warm a stateful scenario up with tokens or codes of its own; return the higher of its rate
    and `expected_rps`, to size the measured run's file on.

    The rate of an earlier scenario is a poor guide when the box's speed changes (a device
    poll ran at 5,000 req/s after client_credentials ran at 1,600 on a busy box), and a file
    that runs dry turns the rest of the run into errors.
    """
    if args.warmup <= 0:
        return expected_rps
    warm = make(max(int(expected_rps * args.warmup * 1.5), 2000), "warmup")
    out = wrk(server.base + TOKENS, args.warmup, args, _consuming(mode, warm))
    return max(expected_rps, parse_wrk(out)["rps"])


def _consuming(mode: str, path: Path) -> dict[str, str]:
    """wrk's environment for requests that each use up one line of `path` (bench/wrk.lua)."""
    # An assertion is the client's credential: no Basic header beside it (RFC 6749 §2.3).
    return {**fixed("POST", auth=mode != "assertion"), "BENCH_MODE": mode, "BENCH_FILE": str(path)}


USERINFO, PAR = "/api/v1/userinfo", "/api/v1/par"
# A confidential client's pushed authorization request (RFC 9126 §2.1): what /authorize would take.
PAR_BODY = (
    "response_type=code&redirect_uri=https%3A%2F%2Fwww.example.com&scope=openid%20read"
    "&state=af0ifjsldkj&nonce=n-0S6_WzA2Mj&code_challenge_method=S256"
    "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)
MEMORY_SECONDS = 240  # the RSS run stops here even short of MEMORY_TOKENS: make bench stays ~12 min
CHUNK_SECONDS = 10  # RSS is sampled after each wrk run of this length


def run_es256(
    server: Server,
    args: argparse.Namespace,
    store: Any,
    prefix: str,
    work: Path,
    report: dict[str, Any],
    ceilings: Ceilings,
) -> None:
    """Every scenario on the ES256 server, plus the workers' memory across a million tokens."""
    only = set(args.only or [])

    def wanted(name: str) -> bool:
        return not only or name in only

    if wanted("client_credentials"):
        client_credentials(server, args, report, ceilings, memory_run=not only)
    if wanted("client_credentials_jwt"):
        private_key_jwt(server, args, work, report["jwtauth"], ceilings)
    redis_grants(Scene(server, args, store, prefix, work, report["jwtauth"], ceilings, wanted))
    if wanted("client_auth_flood"):
        # Every answer is meant to be an error: 401 for the first few, then 429 before any scrypt.
        env = {**fixed("POST", "grant_type=client_credentials"), "BENCH_AUTH": FLOOD_BASIC}
        report["jwtauth"][FLOOD] = ceilings.mark(measure(FLOOD, server, TOKENS, args, env))
    if wanted("dpop"):
        report["dpop"] = dpop_beside_plain(server, args, work, report["jwtauth"], ceilings)
    once = (
        ("jwks", "JWKS GET", "/jwks", fixed()),
        ("metadata", "metadata GET", "/.well-known/oauth-authorization-server", fixed()),
    )
    for key, name, path, env in once:
        if wanted(key):
            wrk(server.base + path, args.warmup, args, env)
            report["jwtauth"][key] = ceilings.mark(measure(name, server, path, args, env))


def client_credentials(
    server: Server, args: argparse.Namespace, report: dict[str, Any], ceilings: Ceilings, *, memory_run: bool
) -> None:
    """client_credentials ES256 in rounds, then (a full run) on to MEMORY_TOKENS, sampling RSS."""
    name = "client_credentials ES256"
    cc_env = fixed("POST", "grant_type=client_credentials", auth=True)
    wrk(server.base + TOKENS, args.warmup, args, cc_env)
    samples = [(0, memory.rss_of(server.workers()))]
    result = report["jwtauth"][name] = rounds(
        name, lambda a: measure(name, server, TOKENS, a, cc_env), ceilings, args
    )
    issued = result.requests
    samples.append((issued, memory.rss_of(server.workers())))
    if not memory_run:
        return
    print(f"  worker RSS over {MEMORY_TOKENS:,} tokens", flush=True)
    deadline = time.monotonic() + MEMORY_SECONDS
    while issued < MEMORY_TOKENS and time.monotonic() < deadline:
        issued += int(parse_wrk(wrk(server.base + TOKENS, CHUNK_SECONDS, args, cc_env))["requests"])
        samples.append((issued, memory.rss_of(server.workers())))
    report["memory"] = {"samples": samples, "target": MEMORY_TOKENS, "reached": issued >= MEMORY_TOKENS}
    ceilings.time_passed()


def private_key_jwt(
    server: Server, args: argparse.Namespace, work: Path, results: dict[str, Result], ceilings: Ceilings
) -> None:
    """Beside client_secret_basic: private_key_jwt costs a signature check and a SET NX."""
    signed = lambda n, tag: assertions.sign_assertions(  # noqa: E731
        work / "bench-jwt.pem", server.base, n, work / f"assertions-{tag}.txt"
    )
    basic = results.get("client_credentials ES256")
    expected_cc = basic.rps if basic is not None else 3000.0
    expected_cc = warm_stateful(server, args, "assertion", signed, expected_cc)
    name = "client_credentials private_key_jwt"
    results[name] = ceilings.mark(stateful(name, server, args, "assertion", signed, expected_cc))


@dataclass(frozen=True)
class Scene:
    """What the Redis scenarios share: the server, the run's options, Redis, and where results go."""

    server: Server
    args: argparse.Namespace
    store: Any
    prefix: str
    work: Path
    results: dict[str, Result]
    ceilings: Ceilings
    wanted: Callable[[str], bool]


def redis_grants(scene: Scene) -> None:
    """The grants that use Redis: the issue's ratio targets in rounds, the others once."""
    server, args, store, prefix, work = scene.server, scene.args, scene.store, scene.prefix, scene.work
    results, ceilings, wanted = scene.results, scene.ceilings, scene.wanted
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
        results["refresh_token"] = stateful_rounds("refresh_token", scene, "refresh", families, expected)
    if wanted("authorization_code"):
        codes = lambda n, tag: issue_codes(server, store, prefix, n, work / f"codes-{tag}.txt")  # noqa: E731
        results["authorization_code"] = stateful_rounds("authorization_code", scene, "code", codes, expected)
    if wanted("authorization_code_oidc"):
        # Beside the plain exchange: the same code flow with `openid`, so two signatures (the
        # access token and the id_token) and the family's link to the browser session.
        def oidc_codes(n: int, tag: str) -> Path:
            path = work / f"oidc-codes-{tag}.txt"
            return issue_codes(server, store, prefix, n, path, oidc=True)

        oidc_rps = warm_stateful(server, args, "code", oidc_codes, expected)
        name = "authorization_code + id_token"
        results[name] = ceilings.mark(stateful(name, server, args, "code", oidc_codes, oidc_rps))
    others(scene, expected)


def others(scene: Scene, expected: float) -> None:
    """Device polling, introspection (in rounds), userinfo and PAR push."""
    server, args, store, prefix, work = scene.server, scene.args, scene.store, scene.prefix, scene.work
    results, ceilings, wanted = scene.results, scene.ceilings, scene.wanted
    if wanted("device_poll"):
        # A pending poll costs less than a password login: size its codes on client_credentials,
        # or the file runs dry and wrk's "exhausted" requests count as errors.
        cc = results.get("client_credentials ES256")
        polls = max(expected, cc.rps if cc is not None else 3000.0)
        results["device_poll"] = ceilings.mark(device_polls(server, args, store, prefix, work, polls))
    if wanted("introspection"):
        access = post_form(server, {"grant_type": "password", "username": USER, "password": PASSWORD})
        env = fixed("POST", "token=" + access["access_token"], auth=True)
        wrk(server.base + "/api/v1/introspect", args.warmup, args, env)
        results["introspection"] = rounds(
            "introspection",
            lambda a: measure("introspection", server, "/api/v1/introspect", a, env),
            ceilings,
            args,
        )
    if wanted("userinfo"):
        results["userinfo"] = ceilings.mark(userinfo(server, args, store, prefix, work))
    if wanted("par"):
        env = fixed("POST", PAR_BODY, auth=True)
        wrk(server.base + PAR, args.warmup, args, env)
        results["par"] = ceilings.mark(measure("PAR push", server, PAR, args, env))


def userinfo(server: Server, args: argparse.Namespace, store: Any, prefix: str, work: Path) -> Result:
    """GET /userinfo with one access token granted `openid` (from an OpenID Connect code exchange).

    The token is checked as every access token is (signature, issuer, expiry) and its refresh
    family looked up, so a revoked family's tokens stop answering.
    """
    path = issue_codes(server, store, prefix, 1, work / "userinfo-code.txt", oidc=True)
    code = path.read_text().strip()
    access = post_form(server, {"grant_type": "authorization_code", "code": code})["access_token"]
    env = {**fixed("GET"), "BENCH_BEARER": access}
    wrk(server.base + USERINFO, args.warmup, args, env)
    return measure("userinfo", server, USERINFO, args, env)


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
