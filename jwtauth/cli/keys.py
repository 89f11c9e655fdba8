"""`jwtauth keys`: list, rotate, ensure, revoke and prune the signing keys in keys/."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jwtauth.cli.keyfolder import ensure, prune, revoke, rotate
from jwtauth.config.settings import load_settings
from jwtauth.keys import ALGORITHMS, KeyRing, lifecycle
from jwtauth.store.pepper import PEPPER_FILE


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
    settings = load_settings(args.config)
    directory = Path(args.dir) if args.dir else settings.keys_dir
    # A retiring key stays published as long as any token it signed can still be presented.
    retire_after = settings.token_horizon
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
        had_pepper = (directory / PEPPER_FILE).exists()
        created = ensure(directory, args.alg or settings.signing_algorithm, retire_after=retire_after)
        print(
            f"created {created.alg} key {created.kid}"
            if created
            else f"{directory}/ already has a signing key"
        )
        if not had_pepper:
            print(
                f"created the pepper {directory / PEPPER_FILE}: keep it with the keys (SECURITY.md)"
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


def add_commands(sub: Any, config_help: str) -> None:
    """Register `keys` on the CLI's sub-parsers."""
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
    e = ks.add_parser("ensure", help="create a first key if none can sign, and the pepper if missing")
    e.add_argument("--alg", choices=ALGORITHMS)
    v = ks.add_parser("revoke", help="withdraw a key from the JWKS at once (a compromised key)")
    v.add_argument("kid", help="the key id; one that starts with - goes after --: revoke -- -Xy…")
    v.add_argument("--alg", choices=ALGORITHMS, help="algorithm of the replacement if it was signing")
    ks.add_parser("prune", help="delete retired and revoked key files")
    k.set_defaults(func=cmd_keys)
