"""The browser session: a signed cookie that lets /authorize skip the password (SSO).

The cookie carries everything a request needs (session id, user, `sub`, `auth_time`, `amr`,
the consents given in this session), so finding a session reads no database. It is
`v2.<payload>.<mac>`: the payload base64url JSON, the MAC an HMAC-SHA256 under a key derived
(HKDF, its own label) from the pepper in keys/ (jwtauth.store.pepper). Every worker holds the
same keys/ folder, so every worker can check every cookie with no new secret to distribute.
v1 cookies were MACed under a key derived from the signing key, so a signing-key rotation ended
the sessions once the key retired; the pepper does not rotate with the keys, and v1 cookies are
no longer read (their holders sign in again once). It is not a JWS: nothing that verifies JWTs
can take a session cookie for a token, and a token is never taken for a cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from jwt.utils import base64url_decode, base64url_encode

from jwtauth.store.pepper import Pepper

VERSION = "v2"
MAX_CONSENTS = 16  # remembered clients; the oldest is forgotten first
LABEL = "browser session cookie"
_COOKIE = re.compile(r"v2\.([A-Za-z0-9_-]{1,3600})\.([A-Za-z0-9_-]{43})")


def cookie_name(secure: bool) -> str:
    """Return the cookie name; `__Host-` pins it to this origin (RFC 6265bis §4.1.3.2)."""
    return "__Host-jwtauth-session" if secure else "jwtauth-session"


@dataclass(frozen=True)
class Session:
    """One signed-in browser: who, since when, how, and what they consented to here."""

    sid: str
    username: str
    sub: str
    auth_time: int
    amr: tuple[str, ...]
    expires: int
    # client_id -> (audience, scopes): remembered consent rides in the cookie, not in a database.
    consent: Mapping[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    # The clients that got a response in this session: its logout notifies them (back-channel).
    clients: tuple[str, ...] = ()

    def consented(self, client_id: str, audience: str, scope: Sequence[str]) -> bool:
        """Tell whether this session already allowed `client_id` this audience and these scopes."""
        given = self.consent.get(client_id)
        return given is not None and given[0] == audience and set(scope) <= set(given[1])

    def with_client(self, client_id: str) -> Session:
        """Return the session remembering that `client_id` signed the user in here."""
        if client_id in self.clients:
            return self
        return replace(self, clients=(*self.clients, client_id)[-MAX_CONSENTS:])

    def with_consent(self, client_id: str, audience: str, scope: Sequence[str]) -> Session:
        """Return the session remembering one more consent (the oldest dropped past MAX_CONSENTS)."""
        kept = {c: v for c, v in self.consent.items() if c != client_id}
        while len(kept) >= MAX_CONSENTS:
            kept.pop(next(iter(kept)))
        return replace(self, consent={**kept, client_id: (audience, tuple(scope))})


def new_session(username: str, sub: str, *, now: float, ttl: int, amr: Sequence[str]) -> Session:
    """Return a fresh session for a user who just authenticated (256 random bits of id)."""
    return Session(secrets.token_urlsafe(32), username, sub, int(now), tuple(amr), int(now) + ttl)


class SessionCodec:
    """Sign and read session cookies with a key derived from the server's pepper."""

    def __init__(self, pepper: Pepper) -> None:
        self._key = pepper.derive(LABEL)

    def encode(self, session: Session) -> str:
        """Return the cookie value."""
        body = {
            "sid": session.sid, "u": session.username, "sub": session.sub, "at": session.auth_time,
            "amr": list(session.amr), "exp": session.expires,
            "c": {c: [aud, list(scope)] for c, (aud, scope) in session.consent.items()},
            "rp": list(session.clients),
        }  # fmt: skip
        payload = base64url_encode(json.dumps(body, separators=(",", ":")).encode()).decode()
        signed = f"{VERSION}.{payload}"
        return f"{signed}.{self._mac(signed)}"

    def decode(self, value: str | None, *, now: float) -> Session | None:
        """Return the session of a well-signed, unexpired cookie; None for anything else."""
        match = _COOKIE.fullmatch(value or "")
        if match is None:
            return None
        signed = value[: match.start(2) - 1] if value else ""
        if not hmac.compare_digest(match[2], self._mac(signed)):
            return None
        try:
            session = _session(json.loads(base64url_decode(match[1])))
        except (ValueError, TypeError, KeyError):
            return None
        return session if now < session.expires else None

    def _mac(self, signed: str) -> str:
        return base64url_encode(hmac.new(self._key, signed.encode(), hashlib.sha256).digest()).decode()


def _session(body: Any) -> Session:
    """Return the Session of a decoded payload (its MAC already checked), or raise on a bad shape."""
    consent = {str(c): (str(v[0]), tuple(str(s) for s in v[1])) for c, v in dict(body["c"]).items()}
    at, exp = body["at"], body["exp"]
    if not isinstance(at, int) or not isinstance(exp, int):
        raise TypeError("auth_time and exp are integers")
    return Session(
        str(body["sid"]), str(body["u"]), str(body["sub"]), at, tuple(str(a) for a in body["amr"]), exp,
        consent, tuple(str(c) for c in body.get("rp", ())),
    )  # fmt: skip
