"""The `jwtauth` command: serve, check-config, hash-secret, revoke; the other modules add the rest."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence

from jwtauth.accounts.hashing import hash_secret
from jwtauth.cli import accounts, remote
from jwtauth.cli import keys as keys_commands
from jwtauth.cli.console import OperatorError, read_secret
from jwtauth.config.reader import ConfigError
from jwtauth.config.settings import Settings, load_settings, with_issuer
from jwtauth.keys import KeyRing


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None))


def cmd_serve(args: argparse.Namespace) -> None:
    from jwtauth.app import create_app
    from jwtauth.cli.serve import ServeError, run
    from jwtauth.observability import stdout_log
    from jwtauth.store.connection import StoreURLError, connect

    host_for_url = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host  # noqa: S104
    if ":" in host_for_url:
        host_for_url = f"[{host_for_url}]"  # RFC 3986 §3.2.2: an IPv6 literal in a URL is bracketed
    settings = with_issuer(_settings(args), f"http://{host_for_url}:{args.port}")
    workers = args.workers or ((os.cpu_count() or 1) if settings.redis_url else 1)
    if not settings.redis_url and workers > 1:
        raise OperatorError(
            "the embedded store lives inside one process, so it allows one worker; "
            "set JWTAUTH_REDIS_URL=redis://… to run several"
        )
    keyring = KeyRing(settings.keys_dir, retire_after=settings.token_horizon)
    if keyring.signer() is None:
        raise OperatorError(
            f"no signing key in {settings.keys_dir}/: run `make keygen` (or `jwtauth keys rotate`)"
        )
    try:
        # Validate the URL in the master, before forking. Nothing connects yet: a store that is
        # down at start must not stop client_credentials and JWKS, which never need it.
        connect(settings.redis_url)
    except StoreURLError as exc:
        raise OperatorError(f"JWTAUTH_REDIS_URL: {exc}") from None

    def factory() -> object:
        # In each worker, after the fork: its own key ring, store pool and metrics.
        ring = KeyRing(settings.keys_dir, retire_after=settings.token_horizon)
        return create_app(settings, ring, connect(settings.redis_url), access_log=stdout_log())

    try:
        run(factory, host=args.host, port=args.port, workers=workers)
    except ServeError as exc:
        raise OperatorError(str(exc)) from None


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
    refresh = RefreshStore(
        store, prefix=settings.redis_prefix, revoked_ttl=settings.token_horizon, revocations=published
    )
    try:
        count = refresh.revoke_all(subject=args.subject, client_id=args.client)
        if args.subject is not None and args.client is None:
            now = time.time()
            # OpenID Connect: "log out everywhere" ends the user's browser sessions (SSO) too.
            SessionMarks(store, prefix=settings.redis_prefix, session_ttl=settings.session_ttl).end_all(
                args.subject, now=now
            )
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


def parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    p = argparse.ArgumentParser(prog="jwtauth", description="OAuth 2.0 server issuing JWT access tokens")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config_help = "TOML settings file (default: $JWTAUTH_CONFIG)"

    s = sub.add_parser("serve", help="serve the HTTP API", description="Serve the HTTP API.")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument(
        "--workers",
        type=_worker_count,
        default=0,
        help="worker processes (default: one per core with Redis, 1 embedded)",
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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    try:
        status = args.func(args)  # None, or an exit status (decode: 1 = does not verify)
    except (ConfigError, OperatorError) as exc:
        print(f"jwtauth: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(status or 0)


if __name__ == "__main__":
    raise SystemExit(main())
