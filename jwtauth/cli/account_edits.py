"""In-place edits of existing clients and users: `clients remove`, `clients rotate-secret`,
`users passwd`, `users remove`.

Each command changes one table through config_edit.edit_document (tomlkit), so the operator's
comments and layout stay; the new file is validated before it atomically replaces the old
one, and running servers pick the change up within a second (accounts/reload.py). A new
client secret is printed once on standard output; a password is read from a prompt or
standard input; the file only ever receives hashes (a keyed fast hash for a generated secret,
scrypt for a password).
"""

from __future__ import annotations

import argparse
import secrets
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from jwtauth.accounts.hashing import fast_hash, hash_secret
from jwtauth.cli.config_edit import edit_document, find_table
from jwtauth.cli.console import OperatorError, read_secret, settings_file
from jwtauth.config.clients import PREVIOUS_SECRET
from jwtauth.config.settings import Settings

MIN_PASSWORD = 8
DEFAULT_OVERLAP = 86400  # seconds both secrets work after a rotation: time to roll the new one out
PICKED_UP = "running servers pick the change up within a second"


def _remove(array: str, key: str, name: str) -> Any:
    def change(document: Any, current: Settings) -> str | None:
        found = find_table(document, array, key, name)
        if found is None:
            return f"no {array[:-1]} {name!r}; nothing was changed"
        tables, index = found
        del tables[index]
        return None

    return change


def cmd_clients_remove(args: argparse.Namespace) -> None:
    """Remove a client's table; its tokens stop being issued or refreshed."""
    path = settings_file(args.config)
    edit_document(path, _remove("clients", "id", args.client_id))
    print(f"removed client {args.client_id!r} from {path}; {PICKED_UP}", file=sys.stderr)
    print(
        "its refresh tokens fail from now on (it can no longer authenticate); its access tokens "
        f"live out their lifetime. To end its grants at once: jwtauth revoke --client {args.client_id}",
        file=sys.stderr,
    )


def cmd_clients_rotate_secret(args: argparse.Namespace) -> None:
    """Give a confidential client a new secret; the old one keeps working for --overlap seconds."""
    path = settings_file(args.config)
    if args.overlap < 0:
        raise OperatorError("--overlap must be 0 or more seconds")
    secret = secrets.token_urlsafe(32)  # 256 bits (RFC 6749 §10.10)
    not_after = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=args.overlap)

    def change(document: Any, current: Settings) -> str | None:
        found = find_table(document, "clients", "id", args.client_id)
        if found is None:
            return f"no client {args.client_id!r}; nothing was changed"
        tables, index = found
        table = tables[index]
        if "secret_hash" not in table:
            return f"client {args.client_id!r} is public: it has no secret to rotate"
        old = table["secret_hash"]
        table["secret_hash"] = fast_hash(secret)  # 256 random bits: a fast keyed hash suffices
        for key in PREVIOUS_SECRET:
            table.pop(key, None)  # a rotation ends the one before it
        if args.overlap:
            table[PREVIOUS_SECRET[0]] = str(old)
            table[PREVIOUS_SECRET[1]] = not_after
        return None

    edit_document(path, change)
    print(f"client {args.client_id!r} has a new secret in {path}; {PICKED_UP}", file=sys.stderr)
    print(f"client_id: {args.client_id}")
    print(f"client_secret: {secret}")
    if args.overlap:
        print(f"the old secret keeps working until {not_after:%Y-%m-%dT%H:%M:%SZ}", file=sys.stderr)
    print("the secret is shown only now: the file keeps only its hash", file=sys.stderr)


def cmd_users_passwd(args: argparse.Namespace) -> None:
    """Set a user's password, typed at a prompt (or read from standard input)."""
    path = settings_file(args.config)
    password = read_secret("New password", args.stdin)
    if len(password) < MIN_PASSWORD:
        raise OperatorError(f"the password is shorter than {MIN_PASSWORD} characters")
    hashed = hash_secret(password)

    def change(document: Any, current: Settings) -> str | None:
        found = find_table(document, "users", "username", args.username)
        if found is None:
            return f"no user {args.username!r}; nothing was changed"
        tables, index = found
        tables[index]["password_hash"] = hashed
        return None

    edit_document(path, change)
    print(f"changed the password of {args.username!r} in {path}; {PICKED_UP}", file=sys.stderr)


def cmd_users_remove(args: argparse.Namespace) -> None:
    """Remove a user; their refresh tokens stop working once servers have the change."""
    path = settings_file(args.config)
    edit_document(path, _remove("users", "username", args.username))
    print(f"removed user {args.username!r} from {path}; {PICKED_UP}", file=sys.stderr)
    print("their refresh tokens fail from now on; access tokens live out their lifetime", file=sys.stderr)


def add_client_actions(actions: Any, config_help: str) -> None:
    """Register `clients remove` and `clients rotate-secret`."""
    r = actions.add_parser(
        "remove",
        help="remove a client from the settings file",
        description="Remove a [[clients]] table in place, keeping the file's comments.",
    )
    r.add_argument("client_id", metavar="CLIENT_ID")
    r.add_argument("--config", help=config_help)
    r.set_defaults(func=cmd_clients_remove)
    s = actions.add_parser(
        "rotate-secret",
        help="give a client a new secret, printed once; the old one works for a while",
        description="Replace a confidential client's secret_hash with the hash of a new generated "
        "secret (printed once). The old hash stays as previous_secret_hash, valid until "
        "previous_secret_not_after (now + --overlap), so the client can be updated without downtime.",
    )
    s.add_argument("client_id", metavar="CLIENT_ID")
    s.add_argument("--config", help=config_help)
    s.add_argument(
        "--overlap",
        type=int,
        default=DEFAULT_OVERLAP,
        help=f"seconds the old secret keeps working (default {DEFAULT_OVERLAP}; 0 ends it now)",
    )
    s.set_defaults(func=cmd_clients_rotate_secret)


def add_user_actions(actions: Any, config_help: str) -> None:
    """Register `users passwd` and `users remove`."""
    p = actions.add_parser(
        "passwd",
        help="set a user's password (prompted for, or read from standard input)",
        description="Replace a user's password_hash in place, keeping the file's comments.",
    )
    p.add_argument("username", metavar="USERNAME")
    p.add_argument("--config", help=config_help)
    p.add_argument("--stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_users_passwd)
    r = actions.add_parser(
        "remove",
        help="remove a user from the settings file",
        description="Remove a [[users]] table in place, keeping the file's comments.",
    )
    r.add_argument("username", metavar="USERNAME")
    r.add_argument("--config", help=config_help)
    r.set_defaults(func=cmd_users_remove)
