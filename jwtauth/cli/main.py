"""The `jwtauth` command: serve, keys, hash-secret, check-config, revoke; admin.py adds the rest."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from jwtauth.accounts.hashing import hash_secret
from jwtauth.cli.admin import AdminError, add_commands
from jwtauth.config import ConfigError, Settings, load_settings, with_issuer
from jwtauth.keys import ALGORITHMS, KeyError_, KeyRing, ensure, lifecycle, prune, revoke, rotate


class CommandError(Exception):
    """A failure to report to the operator as one line, without a traceback."""


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None))


def _retire_after(settings: Settings) -> int:
    # A retiring key stays published as long as any token it signed can still be presented.
    return settings.token_horizon


def _keys_dir(args: argparse.Namespace, settings: Settings) -> Path:
    return Path(args.dir) if getattr(args, "dir", None) else settings.keys_dir


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
        raise CommandError(
            "the embedded store lives inside one process, so it allows one worker; "
            "set JWTAUTH_REDIS_URL=redis://… to run several"
        )
    keyring = KeyRing(settings.keys_dir, retire_after=_retire_after(settings))
    if keyring.signer() is None:
        raise CommandError(
            f"no signing key in {settings.keys_dir}/: run `make keygen` (or `jwtauth keys rotate`)"
        )
    try:
        # Validate the URL in the master, before forking. Nothing connects yet: a store that is
        # down at start must not stop client_credentials and JWKS, which never need it.
        connect(settings.redis_url)
    except StoreURLError as exc:
        raise CommandError(f"JWTAUTH_REDIS_URL: {exc}") from None

    def factory() -> object:
        # In each worker, after the fork: its own key ring, store pool and metrics.
        ring = KeyRing(settings.keys_dir, retire_after=_retire_after(settings))
        return create_app(settings, ring, connect(settings.redis_url), access_log=stdout_log())

    try:
        run(factory, host=args.host, port=args.port, workers=workers)
    except ServeError as exc:
        raise CommandError(str(exc)) from None


def cmd_check_config(args: argparse.Namespace) -> None:
    if not (args.config or os.environ.get("JWTAUTH_CONFIG")):
        # Validating the built-in defaults would print OK for a file nobody checked.
        raise CommandError("check-config needs a file: jwtauth check-config FILE (or set JWTAUTH_CONFIG)")
    settings = _settings(args)
    print(f"{settings.source}: OK ({len(settings.clients)} clients, {len(settings.users)} users)")


def cmd_hash_secret(args: argparse.Namespace) -> None:
    if args.stdin or not sys.stdin.isatty():
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = getpass.getpass("Secret: ")
        if getpass.getpass("Again: ") != secret:
            raise CommandError("the two entries differ")
    if not secret:
        raise CommandError("an empty secret cannot be hashed")
    print(hash_secret(secret))


def _date(epoch: float | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


_CHANGES = {"next": "active at", "active": "revoked at", "retiring": "retired at", "retired": "retired"}


def _list_keys(directory: Path, retire_after: int) -> None:
    """Print every key with its state, its dates and its next change of state."""
    ring, now = KeyRing(directory, retire_after=retire_after), time.time()
    print(f"{'KID':44} {'ALG':6} {'STATE':9} {'CREATED':21} {'SIGNS FROM':21} NEXT CHANGE")
    for s in lifecycle(ring.records, now, retire_after):
        r = s.record
        when = r.revoked_at if s.state == "revoked" else s.until
        change = "-" if when is None else f"{_CHANGES.get(s.state, s.state)} {_date(when)}"
        print(f"{r.kid:44} {r.alg:6} {s.state:9} {_date(r.created):21} {_date(r.active_from):21} {change}")
    for name in ring.skipped:
        print(f"{name:44} {'?':6} {'unusable':9} (skipped: see the log line above)")


def cmd_keys(args: argparse.Namespace) -> None:
    settings = _settings(args)
    directory, retire_after = _keys_dir(args, settings), _retire_after(settings)
    # The key functions read the clock once they hold the folder lock, not here.
    if args.action == "rotate":
        record = rotate(
            directory,
            args.alg or settings.signing_algorithm,
            publish_ahead=settings.publish_ahead,
            retire_after=retire_after,
            immediately=args.now,
        )
        print(f"added {record.alg} key {record.kid}: published now, signs from {_date(record.active_from)}")
    elif args.action == "ensure":
        created = ensure(directory, args.alg or settings.signing_algorithm, retire_after=retire_after)
        print(
            f"created {created.alg} key {created.kid}"
            if created
            else f"{directory}/ already has a signing key"
        )
    elif args.action == "revoke":
        replacement = revoke(directory, args.kid, retire_after=retire_after, alg=args.alg)
        print(f"revoked {args.kid}: withdrawn from the JWKS (workers drop it within a second)")
        if replacement is not None:
            print(f"it was signing: new {replacement.alg} key {replacement.kid} signs from now")
    elif args.action == "prune":
        gone = prune(directory, retire_after=retire_after)
        print(f"deleted {len(gone)} retired or revoked key(s)" + "".join(f"\n  {k}" for k in gone))
    else:
        _list_keys(directory, retire_after)


def cmd_revoke(args: argparse.Namespace) -> None:
    """End every refresh family of a user and/or a client ("log out everywhere")."""
    from jwtauth.store import RefreshStore
    from jwtauth.store.connection import STORE_ERRORS, StoreURLError, connect

    if args.subject is None and args.client is None:
        raise CommandError("say whose grants to end: --subject USER, --client ID, or both")
    settings = _settings(args)
    if not settings.redis_url:
        raise CommandError(
            "the embedded store lives inside the `jwtauth serve` process, out of reach of this "
            "command; set JWTAUTH_REDIS_URL to the Redis the server uses"
        )
    try:
        store = connect(settings.redis_url)
    except StoreURLError as exc:
        raise CommandError(f"JWTAUTH_REDIS_URL: {exc}") from None
    # The tombstone lifetime create_app uses: as long as any access token of the family lives.
    refresh = RefreshStore(store, prefix=settings.redis_prefix, revoked_ttl=settings.token_horizon)
    try:
        count = refresh.revoke_all(subject=args.subject, client_id=args.client)
    except STORE_ERRORS as exc:  # includes the cluster client's errors outside RedisError
        raise CommandError(f"the store is unreachable ({type(exc).__name__}); nothing was revoked") from None
    families = "family" if count == 1 else "families"
    print(f"revoked {count} refresh-token {families} of {_whose(args, settings)}")
    if count:
        print(
            "their refresh tokens fail from now on and introspection reports their access tokens "
            "inactive; resource servers that verify tokens offline accept those access tokens "
            f"until they expire (at most {settings.access_token_ttl} s)"
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

    k = sub.add_parser("keys", help="manage signing keys", description="Manage the signing keys in keys/.")
    k.add_argument("--config", help=config_help)
    k.add_argument("--dir", help="keys folder (default: from settings, $JWTAUTH_KEYS_DIR or keys/)")
    ks = k.add_subparsers(dest="action", required=True, metavar="ACTION")
    ks.add_parser("list", help="show every key with its state and dates")
    r = ks.add_parser("rotate", help="add a key: published now, signing after the publish-ahead delay")
    r.add_argument("--alg", choices=ALGORITHMS, help="algorithm of the new key (default: from settings)")
    r.add_argument(
        "--now",
        action="store_true",
        help="emergency: sign as soon as every worker publishes it (~2 s), skipping publish_ahead",
    )
    e = ks.add_parser("ensure", help="create a first key if none can sign")
    e.add_argument("--alg", choices=ALGORITHMS)
    v = ks.add_parser("revoke", help="withdraw a key from the JWKS at once (a compromised key)")
    v.add_argument("kid")
    v.add_argument("--alg", choices=ALGORITHMS, help="algorithm of the replacement if it was signing")
    ks.add_parser("prune", help="delete retired and revoked key files")
    k.set_defaults(func=cmd_keys)

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
    add_commands(sub)  # clients add, users add, token, decode
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; report operator errors as one line and exit 2."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    try:
        status = args.func(args)  # None, or an exit status (decode: 1 = does not verify)
    except (ConfigError, CommandError, KeyError_, AdminError) as exc:
        print(f"jwtauth: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(status or 0)


if __name__ == "__main__":
    raise SystemExit(main())
