"""The `jwtauth` command: serve, check-config, hash-secret, revoke; the other modules add the rest."""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence

from jwtauth import __version__
from jwtauth.accounts.hashing import hash_secret
from jwtauth.cli import accounts, logs, remote, telemetry
from jwtauth.cli import keys as keys_commands
from jwtauth.cli.console import OperatorError, read_secret
from jwtauth.config.reader import ConfigError
from jwtauth.config.settings import Settings, load_settings, with_issuer
from jwtauth.keys import KeyRing
from jwtauth.store.pepper import Pepper, PepperError
from jwtauth.verify.fetch import is_loopback

log = logging.getLogger("jwtauth")


_NO_PEPPER = (
    "no pepper in {folder}/: run `jwtauth keys ensure` once and share the file with every worker "
    "(Redis keeps users' names sealed and keyed with it)"
)


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None))


def _serving_pepper(settings: Settings, keyring: KeyRing) -> Pepper:
    """Return the pepper to serve with, or say which command makes it."""
    if keyring.pepper is not None:
        return keyring.pepper
    if settings.redis_url:
        # A shared Redis outlives processes and serves many workers: all need the folder's pepper.
        raise OperatorError(_NO_PEPPER.format(folder=settings.keys_dir))
    # The embedded store dies with this one process, so a pepper of its own fits it.
    return Pepper.generate()


def _keyring(settings: Settings, *, signing: bool = False) -> KeyRing:
    """Return the key ring of the configured folder, or say what is wrong with it.

    `signing`: a ring with no key that can sign is wrong too (serve needs one).
    """
    try:
        keyring = KeyRing(settings.keys_dir, retire_after=settings.token_horizon)
    except PepperError as exc:
        raise OperatorError(str(exc)) from None
    if signing and keyring.signer() is None:
        hint = "run `make keygen` (or `jwtauth keys rotate`)"
        raise OperatorError(f"no signing key in {settings.keys_dir}/: {hint}")
    return keyring


def cmd_serve(args: argparse.Namespace) -> None:
    from jwtauth.app import create_app
    from jwtauth.cli.serve import ServeError, run
    from jwtauth.observability import stdout_log
    from jwtauth.store.connection import StoreURLError, connect

    _listen_from_env(args, os.environ)
    settings = _served_issuer(_settings(args), args.host, args.port)
    workers = args.workers or ((os.cpu_count() or 1) if settings.redis_url else 1)
    if not settings.redis_url and workers > 1:
        raise OperatorError(
            "the embedded store lives inside one process, so it allows one worker; "
            "set JWTAUTH_REDIS_URL=redis://… to run several"
        )
    keyring = _keyring(settings, signing=True)
    pepper = _serving_pepper(settings, keyring)
    try:
        # Validate the URL in the master, before forking. Nothing connects yet: a store that is
        # down at start must not stop client_credentials and JWKS, which never need it. (The
        # embedded store is made in the worker only: it runs a sweeping thread.)
        if settings.redis_url:
            connect(settings.redis_url)
    except StoreURLError as exc:
        raise OperatorError(f"JWTAUTH_REDIS_URL: {exc}") from None

    tracing = _tracing(os.environ)

    def factory() -> object:
        # In each worker, after the fork: its own key ring, store pool, metrics and tracer.
        ring = KeyRing(settings.keys_dir, retire_after=settings.token_horizon)
        out = stdout_log()  # access and audit lines, one write(2) each
        store = connect(settings.redis_url)
        tracer = telemetry.worker_tracer() if tracing else None

        def reload() -> Settings:  # the file again, as served (the issuer chosen at start)
            return with_issuer(_settings(args), settings.issuer)

        return create_app(
            settings, ring, store, access_log=out, audit_log=out, reload_settings=reload, pepper=pepper,
            tracer=tracer,
        )

    metrics_port = args.metrics_port or settings.metrics_port
    if metrics_port == args.port:
        raise OperatorError(f"--metrics-port {metrics_port} is the public port: pick another")

    try:
        run(
            factory,
            host=args.host,
            port=args.port,
            workers=workers,
            management=_management_factory(settings),
            metrics_port=metrics_port,
        )
    except ServeError as exc:
        raise OperatorError(str(exc)) from None


def _tracing(env: Mapping[str, str]) -> bool:
    """Return whether the workers trace (cli/telemetry.py: the OTEL_* variables decide)."""
    if not telemetry.wanted(env):
        return False
    if not telemetry.installed():
        # A platform may set OTEL_* for every container: say why no spans come, do not refuse.
        log.warning("OTEL_* variables ask for traces, but the otel extra is not installed: "
                    "no spans (%s)", telemetry.INSTALL)  # fmt: skip
        return False
    try:
        telemetry.check(env)
    except telemetry.TelemetryError as exc:
        raise OperatorError(str(exc)) from None
    log.info("tracing on: OpenTelemetry spans per request and store call (OTEL_* variables)")
    return True


def _listen_from_env(args: argparse.Namespace, env: Mapping[str, str]) -> None:
    """Fill --host, --port and --workers left out from JWTAUTH_HOST, _PORT, _WORKERS, else defaults."""
    args.host = args.host or env.get("JWTAUTH_HOST") or "127.0.0.1"
    for name, low, high, default in (("port", 1, 65535, 8000), ("workers", 0, 1024, 0)):
        if getattr(args, name) is not None:
            continue
        text = env.get(f"JWTAUTH_{name.upper()}") or str(default)
        if not text.isdigit() or not low <= int(text) <= high:
            problem = f"must be a number from {low} to {high}, not {text[:20]!r}"
            raise OperatorError(f"JWTAUTH_{name.upper()}: {problem}")
        setattr(args, name, int(text))


def _served_issuer(settings: Settings, host: str, port: int) -> Settings:
    """Return settings whose issuer, unless configured, is the served address (loopback for 0.0.0.0)."""
    wildcard = host in ("0.0.0.0", "::", "")  # noqa: S104
    host_for_url = "127.0.0.1" if wildcard else host
    if ":" in host_for_url:
        host_for_url = f"[{host_for_url}]"  # RFC 3986 §3.2.2: an IPv6 literal in a URL is bracketed
    if not settings.issuer and not is_loopback(host):
        # Tokens would name an issuer no client outside this machine can reach or verify.
        log.warning(
            "serving on %s with the issuer defaulting to http://%s:%d: set JWTAUTH_ISSUER to the public URL",
            host or "every address", host_for_url, port,
        )  # fmt: skip
    return with_issuer(settings, f"http://{host_for_url}:{port}")


def _management_factory(settings: Settings) -> Callable[[str | None], object]:
    """Return the builder of the management listener's app (in its own process, after the fork)."""

    def factory(granian_metrics: str | None) -> object:
        from jwtauth.app import create_management_app
        from jwtauth.observability import MULTIPROC_ENV, WorkerMetrics
        from jwtauth.store.connection import connect

        ring = KeyRing(settings.keys_dir, retire_after=settings.token_horizon)
        metrics = WorkerMetrics(os.environ[MULTIPROC_ENV])  # set by jwtauth serve before the fork
        return create_management_app(ring, connect(settings.redis_url), metrics, granian_metrics)

    return factory


def cmd_check_config(args: argparse.Namespace) -> None:
    if not (args.config or os.environ.get("JWTAUTH_CONFIG")):
        # Validating the built-in defaults would print OK for a file nobody checked.
        raise OperatorError("check-config needs a file: jwtauth check-config FILE (or set JWTAUTH_CONFIG)")
    settings = _settings(args)
    print(f"{settings.source}: OK ({len(settings.clients)} clients, {len(settings.users)} users)")


def cmd_hash_secret(args: argparse.Namespace) -> None:
    print(hash_secret(read_secret("Secret", args.stdin)))


def cmd_revoke(args: argparse.Namespace) -> None:
    """End every refresh family of a user and/or a client ("log out everywhere")."""
    from jwtauth.oidc.pairwise import subjects_of
    from jwtauth.store import RefreshStore
    from jwtauth.store.connection import STORE_ERRORS, StoreURLError, connect
    from jwtauth.store.revocations import RevocationIndex
    from jwtauth.store.sessions import SessionMarks

    if args.subject is None and args.client is None:
        raise OperatorError("say whose grants to end: --subject USER, --client ID, or both")
    settings = _settings(args)
    if not settings.redis_url:
        raise OperatorError(
            "the embedded store lives inside the `jwtauth serve` process, out of reach of this "
            "command; set JWTAUTH_REDIS_URL to the Redis the server uses"
        )
    try:
        store = connect(settings.redis_url)
    except StoreURLError as exc:
        raise OperatorError(f"JWTAUTH_REDIS_URL: {exc}") from None
    # The tombstone lifetime create_app uses: as long as any access token of the family lives.
    # Published too, so offline verifiers that subscribe refuse the access tokens (SECURITY.md).
    published = RevocationIndex(
        store, issuer=settings.issuer, prefix=settings.redis_prefix, horizon=settings.token_horizon,
        aliases=subjects_of(settings).access_subjects,
    )  # fmt: skip
    pepper = _keyring(settings).pepper
    if pepper is None:
        raise OperatorError(_NO_PEPPER.format(folder=settings.keys_dir))
    refresh = RefreshStore(
        store, pepper=pepper, prefix=settings.redis_prefix, revoked_ttl=settings.token_horizon,
        revocations=published,
    )  # fmt: skip
    try:
        count = refresh.revoke_all(subject=args.subject, client_id=args.client)
        if args.subject is not None and args.client is None:
            now = time.time()
            # OpenID Connect: "log out everywhere" ends the user's browser sessions (SSO) too.
            marks = SessionMarks(
                store, pepper=pepper, prefix=settings.redis_prefix, session_ttl=settings.session_ttl
            )
            marks.end_all(args.subject, now=now)
            # Whole seconds, as SessionMarks: this second's access tokens go too (iat < not_before).
            published.record_subject(args.subject, not_before=int(now) + 1, now=now)
    except STORE_ERRORS as exc:  # includes the cluster client's errors outside RedisError
        raise OperatorError(f"the store is unreachable ({type(exc).__name__}); nothing was revoked") from None
    families = "family" if count == 1 else "families"
    print(f"revoked {count} refresh-token {families} of {_whose(args, settings)}")
    if args.subject is not None and args.client is None:
        print(f"ended every browser session of {args.subject}: the next sign-in asks for the password")
    if count:
        print(
            "their refresh tokens fail from now on and introspection reports their access tokens "
            "inactive; resource servers that verify tokens offline refuse them once they reread "
            f"the revocation document (within {settings.revocations_max_age} s if they subscribe), "
            f"others accept them until they expire (at most {settings.access_token_ttl} s)"
        )


def _whose(args: argparse.Namespace, settings: Settings) -> str:
    """Describe the revoked grants' owner, flagging names the configuration does not know."""
    parts = []
    if args.subject is not None:
        known = any(u.username == args.subject for u in settings.users)
        parts.append(f"user {args.subject}" + ("" if known else " (not a user in the settings)"))
    if args.client is not None:
        known = any(c.client_id == args.client for c in settings.clients)
        parts.append(f"client {args.client}" + ("" if known else " (not a client in the settings)"))
    return " with ".join(parts)


def _worker_count(text: str) -> int:
    """Parse --workers: 0 (automatic) or more; the server would reject a negative count late."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (automatic) or a positive number")
    return value


def _port(text: str) -> int:
    """Parse a TCP port number."""
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be a port number from 1 to 65535")
    return value


def parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    p = argparse.ArgumentParser(prog="jwtauth", description="OAuth 2.0 server issuing JWT access tokens")
    p.add_argument("--version", action="version", version=f"jwtauth {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config_help = "TOML settings file (default: $JWTAUTH_CONFIG)"

    s = sub.add_parser("serve", help="serve the HTTP API", description="Serve the HTTP API.")
    s.add_argument("--host", default=None, help="address to listen on (default: $JWTAUTH_HOST or 127.0.0.1)")
    s.add_argument("--port", type=_port, default=None, help="port (default: $JWTAUTH_PORT or 8000)")
    s.add_argument(
        "--workers",
        type=_worker_count,
        default=None,
        help="worker processes (default: $JWTAUTH_WORKERS, else one per core with Redis, 1 embedded)",
    )
    s.add_argument(
        "--metrics-port",
        type=_port,
        default=None,
        help="serve /metrics and the health checks on this port only (default: [metrics] port; none)",
    )
    s.add_argument("--config", help=config_help)
    s.set_defaults(func=cmd_serve)

    c = sub.add_parser(
        "check-config", help="validate a settings file", description="Validate a settings file."
    )
    c.add_argument("config", nargs="?", help=config_help)
    c.set_defaults(func=cmd_check_config)

    h = sub.add_parser(
        "hash-secret",
        help="hash a client secret or password for the settings file",
        description="Print an scrypt hash to paste into secret_hash or password_hash.",
    )
    h.add_argument("--stdin", action="store_true", help="read the secret from standard input")
    h.set_defaults(func=cmd_hash_secret)

    keys_commands.add_commands(sub, config_help)

    rv = sub.add_parser(
        "revoke",
        help="end every refresh-token family of a user or a client (log out everywhere)",
        description="End every refresh-token family of a user, of a client, or of a user with one "
        "client: their refresh tokens stop working and introspection reports their access tokens "
        "inactive. Needs JWTAUTH_REDIS_URL (the store the server uses).",
    )
    rv.add_argument("--subject", metavar="USER", help="the user (token subject) to log out everywhere")
    rv.add_argument("--client", metavar="ID", help="the client whose grants end (e.g. a leaked secret)")
    rv.add_argument("--config", help=config_help)
    rv.set_defaults(func=cmd_revoke)
    accounts.add_commands(sub)  # clients add, users add
    remote.add_commands(sub)  # token, decode
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; report operator errors as one line and exit 2."""
    try:
        log_format, level = logs.choose(os.environ)
    except logs.LogSettingError as exc:
        logs.operator_error(str(exc), "text")
        return 2
    logs.configure(log_format, level)
    args = parser().parse_args(argv)
    try:
        status = args.func(args)  # None, or an exit status (decode: 1 = does not verify)
    except (ConfigError, OperatorError) as exc:
        logs.operator_error(str(exc), log_format)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(status or 0)


if __name__ == "__main__":
    raise SystemExit(main())
