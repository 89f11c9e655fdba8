"""Audit events: one JSON line per security-relevant outcome, beside the access log.

Each line names who (`client_id`, `sub`), what (`audit`: the event, `grant`, `jti`, `fid`),
where from (`client`: the address the sign-in limits count, `request_id`) and the outcome
(`success`/`failure`, the OAuth `error`). Never a secret, token, code or password: the claims
read back from a token this server just minted are its identifiers only.

Events:
- `token_issued`: an access token left the token endpoint, or /authorize (implicit).
- `request_refused`: the token endpoint answered an OAuth error, or any endpoint `invalid_client`.
- `signin_locked`: the brute-force limiter refused a sign-in (429).
- `reuse_detected`: a used refresh token or code came back; its grant was revoked (RFC 9700 §4.14).
- `family_revoked`: a revocation request ended a refresh family (RFC 7009).
- `key_rotated`: this worker's key ring changed signer (no request: `request_id` is null).
- `device_flow`: a device request's step (RFC 8628; `step`: requested, approved, denied, ...).
- `accounts_reloaded`: the settings file's clients and users were swapped in (accounts/reload.py).

`Audit` is Falcon middleware (listed after the Observer, whose request id it uses) and the
`Events` sink of the grants: what a grant reports during a request is written with that
request's context when the response leaves.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from json.encoder import encode_basestring_ascii
from typing import Any
from urllib.parse import parse_qs, urlsplit

import falcon

from jwtauth.observability import AccessLog
from jwtauth.resources import paths
from jwtauth.tokens.claims import TOKEN_IDS

INVALID_CLIENT = "invalid_client"
# The facts grants reported during the current request (each request runs on one thread).
_facts: ContextVar[list[tuple[str, dict[str, Any]]] | None] = ContextVar("jwtauth_audit_facts", default=None)


def token_ids(token: str | None) -> dict[str, Any]:
    """Return the identifiers (sub, jti, fid) of an access token this server just minted.

    Unverified on purpose: the token never left this process; only its identifiers are kept.
    """
    if not token or token.count(".") != 2:
        return {}
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return {}
    if not isinstance(claims, dict):
        return {}
    return {name: claims[name] for name in TOKEN_IDS if isinstance(claims.get(name), str)}


def _implicit_token(location: str | None) -> str | None:
    """Return the access token in an implicit redirect's fragment (RFC 6749 §4.2.2), if any."""
    if not location or "#access_token=" not in location:
        return None
    values = parse_qs(urlsplit(location).fragment).get("access_token")
    return values[0] if values else None


class Audit:
    """Write audit lines to `log` (the access log's sink): Falcon middleware and `Events`."""

    def __init__(
        self, log: AccessLog | None, clock: Callable[[], float] = time.time, *, beside_access: bool = False
    ) -> None:
        """`beside_access`: `log` is also the access log, so a request's lines go out with its
        access line in one write (observability.Observer): one write(2) per request, not two."""
        self.log, self.clock, self.beside_access = log, clock, beside_access

    def write(self, event: str, outcome: str, **fields: Any) -> None:
        """Write one audit line; fields that are None are left out."""
        if self.log is not None:
            self.log(self._text(event, outcome, fields))

    def _text(self, event: str, outcome: str, *groups: Mapping[str, Any]) -> str:
        # Byte for byte what json.dumps(line, separators=(",", ":")) wrote for the dict
        # {ts, audit, outcome, **fields of each group}, at a third of its cost: one line per
        # token issued. The groups are passed as they are, not merged into one dict first.
        ts = repr(round(self.clock(), 3))
        parts = ['{"ts":', ts, ',"audit":', _json(event), ',"outcome":', _json(outcome)]
        for fields in groups:
            for name, value in fields.items():
                if value is not None:
                    parts += (_member(name), _json(value))
        parts.append("}")
        return "".join(parts)

    # --- Events (reported by grants, resources and the key ring) ------------------------------

    def refresh_rotated(self) -> None:
        """Ignore: the token_issued line of the same request says it."""

    def reuse_detected(self, kind: str) -> None:
        """Remember a reuse detection for this request's line."""
        self._fact("reuse_detected", kind=kind)

    def revoked(self) -> None:
        """Remember a family revocation for this request's line."""
        self._fact("family_revoked")

    def key_rotated(self) -> None:
        """Write the signer change at once: it belongs to no request."""
        self.write("key_rotated", "success")

    def device_flow(self, outcome: str) -> None:
        """Remember a device-request step (RFC 8628) for this request's line."""
        self._fact("device_flow", step=outcome)

    def _fact(self, event: str, **fields: Any) -> None:
        facts = _facts.get()
        if facts is None:  # reported outside a request (a test, a CLI): write it bare
            self.write(event, "success", **fields)
        else:
            facts.append((event, fields))

    # --- middleware ---------------------------------------------------------------------------

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        _facts.set([])
        req.context.client_id = None  # set by resources once a client is identified
        req.context.access_token = None  # set by the token endpoint; only its identifiers are logged
        req.context.audit_lines = None  # this request's lines, when they ride with its access line

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object | None, req_succeeded: bool
    ) -> None:
        facts, ctx = _facts.get() or [], req.context
        _facts.set(None)
        if self.log is None:
            return
        lines: list[str] = []
        self._request_lines(lines.append if self.beside_access else self.log, req, resp, facts)
        if lines:
            ctx.audit_lines = "\n".join(lines)

    def _request_lines(
        self,
        out: AccessLog,
        req: falcon.Request,
        resp: falcon.Response,
        facts: list[tuple[str, dict[str, Any]]],
    ) -> None:
        """Write the lines of one request's facts and outcome to `out`."""
        ctx, endpoint, text = req.context, req.uri_template, self._text
        grant = getattr(ctx, "grant", None)
        who = {
            "request_id": getattr(ctx, "request_id", None),
            "client_id": getattr(ctx, "client_id", None),
            "client": getattr(ctx, "client_addr", None) or req.remote_addr,
            "grant": grant if grant and grant != "-" else None,
        }
        for event, fields in facts:
            out(text(event, "success", who, fields))
        status, error = resp.status_code, getattr(ctx, "error", None)
        token = getattr(ctx, "access_token", None)
        if endpoint == paths.TOKEN and status < 300 and token:
            out(text("token_issued", "success", who, getattr(ctx, "token_ids", None) or token_ids(token)))
        elif endpoint == paths.AUTHORIZE and status == 303:
            implicit = _implicit_token(resp.get_header("Location"))
            if implicit:
                out(text("token_issued", "success", {**who, "grant": "implicit"}, token_ids(implicit)))
        elif status == 429:
            out(text("signin_locked", "failure", who, {"endpoint": _label(endpoint)}))
        elif error and (endpoint == paths.TOKEN or error == INVALID_CLIENT):
            out(text("request_refused", "failure", who, {"endpoint": _label(endpoint), "error": error}))


def _json(value: Any) -> str:
    """Return `value` as compact JSON; a string through the escaper json.dumps itself uses."""
    if type(value) is str:
        return encode_basestring_ascii(value)
    return json.dumps(value, separators=(",", ":"))


# A line's member names are few and fixed: each is escaped once.
_MEMBERS: dict[str, str] = {}


def _member(name: str) -> str:
    """Return `,"name":`, the JSON text that opens the member `name`."""
    text = _MEMBERS.get(name)
    if text is None:
        text = _MEMBERS[name] = "," + encode_basestring_ascii(name) + ":"
    return text


def _label(path: str | None) -> str:
    return paths.LABELS.get(path or "", "other")
