"""Offline edits of the settings file: `clients add`, `users add`.

Secrets: a generated client secret is printed once, to standard output, and never logged; a
password is read from a prompt or standard input, never from the command line. The settings
file receives only hashes: scrypt for passwords, a fast keyed hash for generated secrets.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from jwtauth.accounts.hashing import fast_hash, hash_secret
from jwtauth.cli import account_edits
from jwtauth.cli.config_edit import append_table
from jwtauth.cli.console import OperatorError, read_secret, settings_file
from jwtauth.config.client_auth import PROFILES
from jwtauth.config.clients import GRANT_NAMES
from jwtauth.config.settings import Settings
from jwtauth.oidc.claims import ClaimError, parse_claim_option

MIN_PASSWORD = 8
CONFIG_HELP = "TOML settings file to edit (default: $JWTAUTH_CONFIG); created if missing"


def cmd_clients_add(args: argparse.Namespace) -> None:
    """Register a client; a confidential one gets a generated secret, shown once."""
    path = settings_file(args.config)
    public = args.public
    grants = args.grant or (["authorization_code", "refresh_token"] if public else ["client_credentials"])
    fields: dict[str, Any] = {"id": args.client_id}
    if args.name:
        fields["name"] = args.name
    auth = _auth_fields(args)  # private_key_jwt keys, PAR, profile
    keyed = "jwks" in auth or "jwks_uri" in auth
    secret = None if public or keyed else secrets.token_urlsafe(32)  # 256 bits (RFC 6749 §10.10)
    if public:
        fields["public"] = True
    elif secret is not None:
        fields["secret_hash"] = fast_hash(secret)  # 256 random bits: a fast hash suffices
    fields["grant_types"] = grants
    fields |= auth
    for key, value in (
        ("scopes", args.scope),
        ("audiences", args.audience),
        ("redirect_uris", args.redirect_uri),
        ("post_logout_redirect_uris", args.post_logout_redirect_uri),
        ("allowed_origins", args.allowed_origin),
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
    if args.first_party:
        fields["first_party"] = True
    if args.backchannel_logout_uri:
        fields["backchannel_logout_uri"] = args.backchannel_logout_uri
    if args.require_dpop:  # RFC 9449 §5.2: its tokens must be DPoP-bound
        fields["require_dpop"] = True

    def refuse(current: Settings) -> str | None:
        if any(c.client_id == args.client_id for c in current.clients):
            return f"client {args.client_id!r} already exists; nothing was changed"
        return None

    comment = f"added by `jwtauth clients add` on {datetime.now(UTC):%Y-%m-%d}"
    append_table(path, "clients", fields, refuse=refuse, comment=comment)
    print(f"added client {args.client_id!r} to {path}; servers pick it up within a second", file=sys.stderr)
    print(f"client_id: {args.client_id}")
    if secret is not None:
        print(f"client_secret: {secret}")
        print("the secret is shown only now: the file keeps only its hash", file=sys.stderr)


def _auth_fields(args: argparse.Namespace) -> dict[str, Any]:
    """Return the client's private_key_jwt keys (RFC 7523), require_par and profile fields."""
    fields: dict[str, Any] = {}
    if args.jwks_file and args.jwks_uri:
        raise OperatorError("give --jwks-file or --jwks-uri, not both")
    if (args.jwks_file or args.jwks_uri) and args.public:
        raise OperatorError("a client with keys (--jwks-file, --jwks-uri) is confidential: drop --public")
    if args.jwks_file:
        fields["jwks"] = _read_jwks(args.jwks_file)
    if args.jwks_uri:
        fields["jwks_uri"] = args.jwks_uri
    if args.require_par:
        fields["require_par"] = True
    if args.profile:
        fields["profile"] = args.profile
    return fields


def _read_jwks(name: str) -> dict[str, Any]:
    """Read a JWK Set (or one JWK) of public keys from a JSON file."""
    try:
        with open(name, "rb") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise OperatorError(f"{name}: cannot read: {exc.strerror}") from None
    except ValueError:
        raise OperatorError(f"{name}: not a JSON JWK Set") from None
    if isinstance(data, dict) and "kty" in data:
        data = {"keys": [data]}  # one JWK: the set of that key
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise OperatorError(f"{name}: not a JWK Set (an object with a keys array)")
    return {"keys": data["keys"]}


def cmd_users_add(args: argparse.Namespace) -> None:
    """Add a user whose password is typed at a prompt (or read from standard input)."""
    path = settings_file(args.config)
    claims = _claims(args.claim or [])  # refused before the password is asked for
    password = read_secret("Password", args.stdin)
    if len(password) < MIN_PASSWORD:
        raise OperatorError(f"the password is shorter than {MIN_PASSWORD} characters")

    def refuse(current: Settings) -> str | None:
        if any(u.username == args.username for u in current.users):
            return f"user {args.username!r} already exists; nothing was changed"
        return None

    # OpenID Connect Core §2: a random subject, so renaming the user never changes who they are.
    sub = str(uuid.uuid4())
    fields = {"username": args.username, "sub": sub, "password_hash": hash_secret(password), **claims}
    append_table(path, "users", fields, refuse=refuse)
    print(f"added user {args.username!r} (sub {sub}) to {path}; running servers pick it up within a second")


def _claims(options: list[str]) -> dict[str, Any]:
    """Return the claims of repeated `--claim KEY=VALUE` options (address parts merged)."""
    claims: dict[str, Any] = {}
    for option in options:
        try:
            name, value = parse_claim_option(option)
        except ClaimError as exc:
            raise OperatorError(str(exc)) from None
        if name == "address":
            claims["address"] = {**claims.get("address", {}), **value}
        else:
            claims[name] = value
    return claims


def add_commands(sub: Any) -> None:
    """Register `clients` and `users` on the CLI's sub-parsers."""
    _add_clients_commands(sub, CONFIG_HELP)
    _add_users_commands(sub, CONFIG_HELP)


def _add_clients_commands(sub: Any, config_help: str) -> None:
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
        "on standard output) and only its hash is stored (HMAC-SHA256: 256 random bits need no "
        "slow KDF). The file is validated before it is replaced atomically; an existing client id "
        "is refused. Running servers load the client within a second.",
        epilog="example: jwtauth clients add reports --scope read --audience https://api.example.com",
    )
    a.add_argument("client_id", metavar="CLIENT_ID")
    a.add_argument("--config", help=config_help)
    a.add_argument("--name", help="display name on the sign-in page (default: the id)")
    a.add_argument(
        "--grant",
        action="append",
        choices=GRANT_NAMES,
        metavar="GRANT",
        help=f"a grant type it may use ({', '.join(GRANT_NAMES)}); repeat for several "
        "(default: client_credentials, or authorization_code + refresh_token with --public)",
    )
    a.add_argument("--scope", action="append", help="a scope it may ask for; repeat for several")
    a.add_argument(
        "--default-scope", help='scopes granted when it asks for none, e.g. "read" (default: every --scope)'
    )
    a.add_argument(
        "--audience", action="append", help="an audience (resource server URL); the first is the default"
    )
    a.add_argument(
        "--redirect-uri",
        action="append",
        help="a redirect URI, matched exactly (http://127.0.0.1/… and http://[::1]/…: any port); repeatable",
    )
    _add_client_policy_flags(a)
    a.set_defaults(func=cmd_clients_add)
    account_edits.add_client_actions(cs, config_help)  # remove, rotate-secret


def _add_client_policy_flags(a: Any) -> None:
    """Add the flags of how a client authenticates and what it must do: PKCE, keys, PAR, DPoP, logout."""
    a.add_argument("--public", action="store_true", help="no secret (native or browser app): PKCE required")
    a.add_argument("--require-pkce", action="store_true", help="require PKCE of this confidential client")
    a.add_argument(
        "--require-dpop", action="store_true", help="DPoP-bound tokens only (RFC 9449): never a bearer token"
    )
    a.add_argument(
        "--jwks-file",
        metavar="FILE",
        help="a JSON JWK Set of the client's PUBLIC keys: it authenticates with private_key_jwt "
        "(RFC 7523), no secret is made",
    )
    a.add_argument("--jwks-uri", metavar="URL", help="an https URL of the client's JWK Set (private_key_jwt)")
    a.add_argument(
        "--require-par", action="store_true", help="accept only pushed authorization requests (RFC 9126)"
    )
    a.add_argument(
        "--profile",
        choices=PROFILES,
        help="fapi2: the FAPI 2.0 Security Profile (PAR, PKCE, private_key_jwt, DPoP, 60 s codes)",
    )
    a.add_argument(
        "--post-logout-redirect-uri",
        action="append",
        help="an exact URI to return to after logout (RP-Initiated Logout); repeat for several",
    )
    a.add_argument(
        "--backchannel-logout-uri", help="where logout tokens are POSTed (OpenID Connect Back-Channel Logout)"
    )
    a.add_argument(
        "--allowed-origin", action="append", help="a browser origin that may call the token endpoint (CORS)"
    )
    a.add_argument(
        "--first-party",
        action="store_true",
        help="the operator's own app: signed-in users are not asked to consent (OpenID Connect SSO)",
    )


def _add_users_commands(sub: Any, config_help: str) -> None:
    u = sub.add_parser(
        "users", help="add users to the settings file", description="Add users to the settings file."
    )
    us = u.add_subparsers(dest="action", required=True, metavar="ACTION")
    ua = us.add_parser(
        "add",
        help="add a user; the password is prompted for (or read from standard input)",
        description="Append a [[users]] table with the scrypt hash of a password typed twice at a "
        "prompt (or read as one line from standard input) and a new random OpenID Connect subject "
        "(sub). An existing username is refused.",
        epilog='example: jwtauth users add alice@example.com --claim name="Alice Liddell" '
        "--claim email=alice@example.com --claim email_verified=true",
    )
    ua.add_argument("username", metavar="USERNAME")
    ua.add_argument("--config", help=config_help)
    ua.add_argument("--stdin", action="store_true", help="read the password from standard input")
    ua.add_argument(
        "--claim",
        action="append",
        metavar="KEY=VALUE",
        help="a standard OpenID Connect claim (name, email, email_verified=true, locale, "
        "address.locality, ...); repeat for several",
    )
    ua.set_defaults(func=cmd_users_add)
    account_edits.add_user_actions(us, config_help)  # passwd, remove
