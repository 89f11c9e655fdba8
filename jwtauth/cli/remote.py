"""Commands against a running server: `token` (client_credentials) and `decode` (verify a JWT)."""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

import jwt.utils

from jwtauth.cli.console import OperatorError, read_secret
from jwtauth.resources import paths
from jwtauth.verify.fetch import is_loopback

DEFAULT_URL = "http://127.0.0.1:8000"  # where `make run` serves
URL_HELP = f"the jwtauth server, i.e. its issuer (default: $JWTAUTH_URL or {DEFAULT_URL})"


def _base_url(args: argparse.Namespace) -> str:
    url: str = (args.url or os.environ.get("JWTAUTH_URL") or DEFAULT_URL).rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname)):
        # Credentials and keys travel over this URL: plain http only where nobody can listen.
        raise OperatorError(f"{url}: use https (plain http only for localhost)")
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
        raise OperatorError(f"cannot reach {url}: {reason}") from None
    try:
        parsed = json.loads(body)
    except ValueError:
        raise OperatorError(f"{url} answered {status} without JSON; is it a jwtauth server?") from None
    return status, parsed if isinstance(parsed, dict) else {}


def cmd_token(args: argparse.Namespace) -> None:
    """Get an access token with client_credentials and print it (or the whole response)."""
    base = _base_url(args)
    secret = os.environ.get("JWTAUTH_CLIENT_SECRET") or read_secret(
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
        raise OperatorError(f"the token endpoint refused: {error}" + (f" ({detail})" if detail else ""))
    print(json.dumps(body, indent=2) if args.json else body["access_token"])


def _segment(token: str, index: int) -> dict[str, Any]:
    """Decode one JOSE segment (header or payload) without verifying anything."""
    try:
        part = token.split(".")[index]
        value = json.loads(jwt.utils.base64url_decode(part))
    except (IndexError, ValueError):  # binascii.Error is a ValueError
        raise OperatorError("not a JWT: expected three base64url parts separated by dots") from None
    if not isinstance(value, dict):
        raise OperatorError("not a JWT: a part is not a JSON object")
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
        raise OperatorError(f"cannot read {url} ({reason}); is jwtauth serve running there?") from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("jwks_uri"), str):
        raise OperatorError(f"{url} is not jwtauth metadata (no jwks_uri)")
    return metadata


def cmd_decode(args: argparse.Namespace) -> int:
    """Show a token's header and claims; verify it against the server's JWKS unless told not to."""
    from jwtauth.verify import InvalidToken, Verifier, VerifierUnavailable

    from_stdin = args.token == "-"  # noqa: S105  # "-" names standard input, not a secret
    token = sys.stdin.readline().strip() if from_stdin else args.token.strip()
    if token.count(".") != 2:
        raise OperatorError("not a JWT: expected three base64url parts separated by dots")
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
        raise OperatorError(f"cannot fetch the signing keys at {metadata['jwks_uri']}") from None
    except InvalidToken as exc:
        print(f"verified: NO, {exc.reason} (against {metadata['jwks_uri']})")
        return 1
    checked = "signature, typ, issuer, expiry" + (", audience" if args.audience else "")
    print(f"verified: yes ({checked}) with key {header.get('kid')} of {metadata['jwks_uri']}")
    return 0


def add_commands(sub: Any) -> None:
    """Register `token` and `decode` on the CLI's sub-parsers."""
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
