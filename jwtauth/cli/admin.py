"""Operator commands: `clients add`, `users add` (edit the settings file), `token`, `decode`.

Secrets: a generated client secret is printed once, to standard output, and never logged; a
password is read from a prompt or standard input, never from the command line (where `ps` and
shell history would keep it). The settings file receives only scrypt hashes.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import getpass
import json
import logging
import os
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jwtauth.accounts.hashing import hash_secret
from jwtauth.cli.config_edit import append_table
from jwtauth.config import GRANT_TYPES, Settings
from jwtauth.resources import paths

DEFAULT_URL = "http://127.0.0.1:8000"  # where `make run` serves
MIN_PASSWORD = 8
CONFIG_HELP = "TOML settings file to edit (default: $JWTAUTH_CONFIG); created if missing"
URL_HELP = f"the jwtauth server, i.e. its issuer (default: $JWTAUTH_URL or {DEFAULT_URL})"


class AdminError(Exception):
    """A failure to report to the operator as one line, without a traceback."""


def _config_path(args: argparse.Namespace) -> Path:
    chosen = args.config or os.environ.get("JWTAUTH_CONFIG")
    if not chosen:
        raise AdminError("say which settings file to edit: --config FILE (or set JWTAUTH_CONFIG)")
    return Path(chosen)


def _stdin_is_a_terminal() -> bool:
    return sys.stdin.isatty()


def _read_secret(prompt: str, from_stdin: bool, *, confirm: bool = True) -> str:
    """Read a secret from standard input (one line) or a prompt (typed twice when it is new)."""
    if from_stdin or not _stdin_is_a_terminal():
        value = sys.stdin.readline().rstrip("\r\n")
    else:
        value = getpass.getpass(f"{prompt}: ")
        if confirm and getpass.getpass(f"{prompt} again: ") != value:
            raise AdminError("the two entries differ")
    if not value:
        raise AdminError(f"an empty {prompt.lower()} is not allowed")
    return value


def cmd_clients_add(args: argparse.Namespace) -> None:
    """Register a client; a confidential one gets a generated secret, shown once."""
    path = _config_path(args)
    public = args.public
    grants = args.grant or (["authorization_code", "refresh_token"] if public else ["client_credentials"])
    fields: dict[str, Any] = {"id": args.client_id}
    if args.name:
        fields["name"] = args.name
    secret = None if public else secrets.token_urlsafe(32)  # 256 bits (RFC 6749 §10.10)
    if secret is None:
        fields["public"] = True
    else:
        fields["secret_hash"] = hash_secret(secret)
    fields["grant_types"] = grants
    for key, value in (
        ("scopes", args.scope),
        ("audiences", args.audience),
        ("redirect_uris", args.redirect_uri),
    ):
        if value:
            fields[key] = value
    if args.default_scope is not None or args.scope:
        # Asking for no scope gets every scope it may have unless told otherwise (RFC 6749 §3.3).
        fields["default_scope"] = (
            args.default_scope if args.default_scope is not None else " ".join(args.scope)
        )
    if args.require_pkce:
        fields["require_pkce"] = True

    def refuse(current: Settings) -> str | None:
        if any(c.client_id == args.client_id for c in current.clients):
            return f"client {args.client_id!r} already exists; nothing was changed"
        return None

    comment = f"added by `jwtauth clients add` on {datetime.now(UTC):%Y-%m-%d}"
    append_table(path, "clients", fields, refuse=refuse, comment=comment)
    print(f"added client {args.client_id!r} to {path}; restart jwtauth serve to load it", file=sys.stderr)
    print(f"client_id: {args.client_id}")
    if secret is not None:
        print(f"client_secret: {secret}")
        print("the secret is shown only now: the file keeps only its hash", file=sys.stderr)


def cmd_users_add(args: argparse.Namespace) -> None:
    """Add a user whose password is typed at a prompt (or read from standard input)."""
    path = _config_path(args)
    password = _read_secret("Password", args.stdin)
    if len(password) < MIN_PASSWORD:
        raise AdminError(f"the password is shorter than {MIN_PASSWORD} characters")

    def refuse(current: Settings) -> str | None:
        if any(u.username == args.username for u in current.users):
            return f"user {args.username!r} already exists; nothing was changed"
        return None

    fields = {"username": args.username, "password_hash": hash_secret(password)}
    append_table(path, "users", fields, refuse=refuse)
    print(f"added user {args.username!r} to {path}; restart jwtauth serve to load it")


def _base_url(args: argparse.Namespace) -> str:
    url: str = (args.url or os.environ.get("JWTAUTH_URL") or DEFAULT_URL).rstrip("/")
    parts = urllib.parse.urlsplit(url)
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        # Credentials and keys travel over this URL: plain http only where nobody can listen.
        raise AdminError(f"{url}: use https (plain http only for localhost)")
    return url


def _post_form(url: str, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310  # the scheme was checked by _base_url
        url,
        data=urllib.parse.urlencode(form).encode(),
        headers={"Authorization": authorization, "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AdminError(f"cannot reach {url}: {reason}") from None
    try:
        parsed = json.loads(body)
    except ValueError:
        raise AdminError(f"{url} answered {status} without JSON; is it a jwtauth server?") from None
    return status, parsed if isinstance(parsed, dict) else {}


def cmd_token(args: argparse.Namespace) -> None:
    """Get an access token with client_credentials and print it (or the whole response)."""
    base = _base_url(args)
    secret = os.environ.get("JWTAUTH_CLIENT_SECRET") or _read_secret(
        "Client secret", args.stdin, confirm=False
    )
    # RFC 6749 §2.3.1: id and secret are form-urlencoded before the Basic encoding.
    pair = f"{urllib.parse.quote_plus(args.client_id)}:{urllib.parse.quote_plus(secret)}"
    authorization = "Basic " + base64.b64encode(pair.encode()).decode()
    form = {"grant_type": "client_credentials"}
    if args.scope:
        form["scope"] = args.scope
    if args.resource:
        form["resource"] = args.resource
    status, body = _post_form(base + paths.TOKEN, form, authorization)
    if status != 200 or "access_token" not in body:
        error = body.get("error", f"HTTP {status}")
        detail = body.get("error_description")
        raise AdminError(f"the token endpoint refused: {error}" + (f" ({detail})" if detail else ""))
    print(json.dumps(body, indent=2) if args.json else body["access_token"])


def _segment(token: str, index: int) -> dict[str, Any]:
    """Decode one JOSE segment (header or payload) without verifying anything."""
    try:
        part = token.split(".")[index]
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError, binascii.Error):
        raise AdminError("not a JWT: expected three base64url parts separated by dots") from None
    if not isinstance(value, dict):
        raise AdminError("not a JWT: a part is not a JSON object")
    return value


def _when(epoch: object, now: float) -> str:
    if not isinstance(epoch, int | float) or isinstance(epoch, bool):
        return "-"
    moment = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    seconds = int(epoch - now)
    relative = f"in {seconds} s" if seconds >= 0 else f"{-seconds} s ago"
    return f"{moment} ({relative})"


def _server_metadata(base: str) -> dict[str, Any]:
    """Fetch the server's RFC 8414 metadata (issuer, jwks_uri) or fail with one line."""
    from jwtauth.verify import urllib_fetch

    url = base + paths.METADATA[0]
    try:
        body, _ = urllib_fetch(url)
        metadata = json.loads(body)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise AdminError(f"cannot read {url} ({reason}); is jwtauth serve running there?") from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("jwks_uri"), str):
        raise AdminError(f"{url} is not jwtauth metadata (no jwks_uri)")
    return metadata


def cmd_decode(args: argparse.Namespace) -> int:
    """Show a token's header and claims; verify it against the server's JWKS unless told not to."""
    from jwtauth.verify import InvalidToken, Verifier, VerifierUnavailable

    from_stdin = args.token == "-"  # noqa: S105  # "-" names standard input, not a secret
    token = sys.stdin.readline().strip() if from_stdin else args.token.strip()
    if token.count(".") != 2:
        raise AdminError("not a JWT: expected three base64url parts separated by dots")
    header, claims = _segment(token, 0), _segment(token, 1)
    now = time.time()
    print("header:\n" + json.dumps(header, indent=2))
    print("claims:\n" + json.dumps(claims, indent=2))
    print(f"issued:  {_when(claims.get('iat'), now)}")
    print(f"expires: {_when(claims.get('exp'), now)}")
    if args.no_verify:
        print("verified: not checked (--no-verify)")
        return 0
    metadata = _server_metadata(_base_url(args))
    verifier = Verifier(
        issuer=str(metadata.get("issuer")),
        audience=args.audience,
        verify_audience=args.audience is not None,
        jwks_uri=metadata["jwks_uri"],
        leeway=0,
    )
    # The verifier logs fetch failures with a traceback, as a service should; here one line does.
    logging.getLogger("jwtauth.verify").setLevel(logging.CRITICAL)
    try:
        verifier.verify(token)
    except VerifierUnavailable:
        raise AdminError(f"cannot fetch the signing keys at {metadata['jwks_uri']}") from None
    except InvalidToken as exc:
        print(f"verified: NO, {exc.reason} (against {metadata['jwks_uri']})")
        return 1
    checked = "signature, typ, issuer, expiry" + (", audience" if args.audience else "")
    print(f"verified: yes ({checked}) with key {header.get('kid')} of {metadata['jwks_uri']}")
    return 0


def add_commands(sub: Any, config_help: str = CONFIG_HELP) -> None:
    """Register `clients`, `users`, `token` and `decode` on the CLI's sub-parsers."""
    c = sub.add_parser(
        "clients",
        help="register OAuth clients in the settings file",
        description="Register OAuth clients in the settings file.",
    )
    cs = c.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = cs.add_parser(
        "add",
        help="add a client; a confidential one gets a generated secret, printed once",
        description="Append a [[clients]] table to the settings file, keeping its comments. A "
        "confidential client gets a generated 256-bit secret: it is printed once (client_secret: "
        "on standard output) and only its scrypt hash is stored. The file is validated before it "
        "is replaced atomically; an existing client id is refused. Restart `jwtauth serve` to load "
        "the client.",
        epilog="example: jwtauth clients add reports --scope read --audience https://api.example.com",
    )
    a.add_argument("client_id", metavar="CLIENT_ID")
    a.add_argument("--config", help=config_help)
    a.add_argument("--name", help="display name on the sign-in page (default: the id)")
    a.add_argument(
        "--grant",
        action="append",
        choices=GRANT_TYPES,
        metavar="GRANT",
        help=f"a grant type it may use ({', '.join(GRANT_TYPES)}); repeat for several "
        "(default: client_credentials, or authorization_code + refresh_token with --public)",
    )
    a.add_argument("--scope", action="append", help="a scope it may ask for; repeat for several")
    a.add_argument(
        "--default-scope", help='scopes granted when it asks for none, e.g. "read" (default: every --scope)'
    )
    a.add_argument(
        "--audience", action="append", help="an audience (resource server URL); the first is the default"
    )
    a.add_argument("--redirect-uri", action="append", help="an exact redirect URI; repeat for several")
    a.add_argument("--public", action="store_true", help="no secret (native or browser app): PKCE required")
    a.add_argument("--require-pkce", action="store_true", help="require PKCE of this confidential client")
    a.set_defaults(func=cmd_clients_add)

    u = sub.add_parser(
        "users", help="add users to the settings file", description="Add users to the settings file."
    )
    us = u.add_subparsers(dest="action", required=True, metavar="ACTION")
    ua = us.add_parser(
        "add",
        help="add a user; the password is prompted for (or read from standard input)",
        description="Append a [[users]] table with the scrypt hash of a password typed twice at a "
        "prompt (or read as one line from standard input). An existing username is refused.",
    )
    ua.add_argument("username", metavar="USERNAME")
    ua.add_argument("--config", help=config_help)
    ua.add_argument("--stdin", action="store_true", help="read the password from standard input")
    ua.set_defaults(func=cmd_users_add)

    t = sub.add_parser(
        "token",
        help="get an access token for a client (client_credentials), for scripts",
        description="Ask a running server for an access token with the client_credentials grant "
        "and print it. The secret comes from $JWTAUTH_CLIENT_SECRET, standard input or a prompt, "
        "never from the command line.",
        epilog='example: curl -H "Authorization: Bearer $(jwtauth token --client-id reports)" …',
    )
    t.add_argument("--client-id", required=True)
    t.add_argument("--scope", help="space-separated scopes (default: the client's default scope)")
    t.add_argument("--resource", help="the audience to ask for (RFC 8707)")
    t.add_argument("--url", help=URL_HELP)
    t.add_argument("--json", action="store_true", help="print the whole token response")
    t.add_argument("--stdin", action="store_true", help="read the secret from standard input")
    t.set_defaults(func=cmd_token)

    d = sub.add_parser(
        "decode",
        help="show a token's header and claims, and whether it verifies",
        description="Print a JWT's header and claims, then verify it against the JWK Set of a "
        "running server (signature, typ at+jwt, issuer, expiry; audience with --audience). "
        "Exit status: 0 verified, 1 not verified, 2 could not check.",
    )
    d.add_argument("token", metavar="TOKEN", help="the token, or - to read it from standard input")
    d.add_argument("--url", help=URL_HELP)
    d.add_argument("--audience", help="also require this audience")
    d.add_argument("--no-verify", action="store_true", help="only decode; contact no server")
    d.set_defaults(func=cmd_decode)
