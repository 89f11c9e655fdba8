"""Read an id_token we issued back, as an `id_token_hint` (Core §3.1.2.1; RP-Initiated Logout §2).

Only our own id_tokens pass: typed `JWT` (an access token is `at+jwt`), signed by a key we still
publish with that key's algorithm, our issuer, an `aud` and a `sub`, and no `client_id` or
`scope` (which only access tokens carry). Expiry is not checked: the specs allow an expired hint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import jwt

from jwtauth.keys import KeyRing
from jwtauth.oidc.idtoken import ID_TOKEN_TYP
from jwtauth.oidc.pairwise import Subjects

_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Hint:
    """What an id_token_hint says: whose it was, for which clients, in which session."""

    sub: str
    audience: tuple[str, ...]
    sid: str | None


class IdTokenHints:
    """Check id_token_hints against our keys and issuer."""

    def __init__(self, issuer: str, keyring: KeyRing, subjects: Subjects) -> None:
        self.issuer, self.keyring, self.subjects = issuer, keyring, subjects

    def read(self, token: str) -> Hint | None:
        """Return the hint of an id_token we signed (expired or not), else None (never raises)."""
        if len(token) > 8 * 1024 or _COMPACT_JWS.fullmatch(token) is None:
            return None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        kid = header.get("kid")
        key = self.keyring.published(kid) if isinstance(kid, str) else None
        if header.get("typ") != ID_TOKEN_TYP or key is None or header.get("alg") != key.alg:
            return None  # RFC 8725 §3.1, §3.11: the key pins the alg; the typ tells the kind
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.private_key.public_key(),
                algorithms=[key.alg],
                issuer=self.issuer,
                options={"verify_exp": False, "verify_iat": False, "verify_aud": False, "require": ["sub"]},
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            return None
        hint = _hint(claims)
        if hint is None:
            return None
        # Core §8.1: a pairwise client's id_token names the user by its pairwise sub; the hint
        # speaks of the user's public sub, as sessions do ("" matches no session: no such user).
        public = self.subjects.public(hint.audience[0], hint.sub)
        return Hint(public or "", hint.audience, hint.sid)


def _hint(claims: dict[str, Any]) -> Hint | None:
    aud, sub, sid = claims.get("aud"), claims.get("sub"), claims.get("sid")
    audience = (aud,) if isinstance(aud, str) else tuple(aud) if isinstance(aud, list) else ()
    if "client_id" in claims or "scope" in claims or not isinstance(sub, str):
        return None  # an access token's claims, whatever its header says
    if not audience or not all(isinstance(a, str) for a in audience):
        return None
    return Hint(sub, audience, sid if isinstance(sid, str) else None)
