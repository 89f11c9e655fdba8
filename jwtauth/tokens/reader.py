"""Read our own tokens back: is this access or refresh token active, and what does it grant?

Used by introspection (RFC 7662) and revocation (RFC 7009). The two token formats cannot be
confused (a JWS has two dots; a refresh token is `<22 chars>.<43 chars>` with one), so the
caller's `token_type_hint` only orders the lookups and never decides the answer (RFC 7662 §2.1
and RFC 7009 §2.1: the server extends its search across every type it supports).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jwt.algorithms import get_default_algorithms

from jwtauth.accounts.live import Live
from jwtauth.config.clients import Client, User
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRecord, KeyRing
from jwtauth.oidc.pairwise import Subjects
from jwtauth.store import FamilyRecord, RefreshStore
from jwtauth.store.refresh_format import REFRESH_TOKEN
from jwtauth.tokens.claims import ACCESS_TOKEN_TYP
from jwtauth.verify.strictjson import decode_segment, parse_object

ACCESS = "access_token"
REFRESH = "refresh_token"
MAX_TOKEN = 8 * 1024
_HEADER_MEMBERS = frozenset({"alg", "kid", "typ"})
# RFC 7515 §7.1: compact JWS is three base64url segments without padding. PyJWT's decoder also
# takes '+', '/' and '=', so one token would have several spellings; only ours is accepted.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# PyJWT's algorithms (stateless), as tokens.claims signs with them: ES256 raw r||s (RFC 7518 §3.4).
_VERIFIERS = get_default_algorithms()
# Claims every token we mint carries (tokens.access_claims), with the type each must have.
_CLAIM_TYPES: dict[str, type | tuple[type, ...]] = {
    "scope": str,
    "client_id": str,
    "sub": str,
    "aud": (str, list),
    "iss": str,
    "exp": int,
    "iat": int,
    "jti": str,
}


@dataclass(frozen=True)
class ActiveToken:
    """A token that is active now: what it is, whose it is, and its RFC 7662 response."""

    kind: str  # ACCESS or REFRESH
    client_id: str
    family_id: str | None
    response: dict[str, Any]


def looks_like_refresh(token: str) -> bool:
    """Tell whether `token` has the shape of our refresh tokens (family id . secret)."""
    return REFRESH_TOKEN.fullmatch(token) is not None


class TokenReader:
    """Decide whether a token we issued is active, checking what a resource server cannot."""

    def __init__(
        self,
        settings: Settings,
        keyring: KeyRing,
        refresh: RefreshStore,
        *,
        clients: Live[Client],
        users: Live[User],
        subjects: Subjects,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.keyring, self.refresh, self.clock = settings, keyring, refresh, clock
        # Who a token may be about (issue 18): a user in use, or a client for itself; read live,
        # so a user or client a settings reload removed has no active token from then on.
        # A pairwise client's access tokens name the user by its pairwise sub (Core §8.1).
        self._clients, self._users, self._subjects = clients, users, subjects
        # The public half of each signing key, derived once per key (kid -> private, public).
        self._public: dict[str, tuple[Any, Any]] = {}

    def _subject_known(self, subject: str, client_id: str) -> bool:
        """Tell whether `subject` still exists: a removed user's tokens are inactive at once."""
        return subject in self._users.table or self._is_client(subject, client_id)

    def _is_client(self, subject: str, client_id: str) -> bool:
        """Tell whether the token is a client's own (client_credentials) and the client exists."""
        return subject == client_id and client_id in self._clients.table

    def _access_subject_known(self, subject: str, client_id: str) -> bool:
        """Tell whether an access token's `sub` (a username, or pairwise) names someone who exists."""
        if self._is_client(subject, client_id):
            return True
        return self._subjects.user_of_access(client_id, subject) is not None

    def read(self, token: str, hint: str | None = None) -> ActiveToken | None:
        """Return the active token, or None for anything inactive, expired, forged or unknown."""
        order = (self.refresh_token, self.access_token)
        if hint == ACCESS:
            order = (self.access_token, self.refresh_token)
        for reader in order:
            found = reader(token)
            if found is not None:
                return found
        return None

    def access_token(self, token: str) -> ActiveToken | None:
        """Return an access token we signed that has not expired and whose family lives."""
        claims = self.access_claims(token)
        if claims is None:
            return None
        fid = claims.get("fid")
        # RFC 9700 §4.14.2, RFC 7009 §2.1: once its refresh family is revoked (reuse, logout,
        # revocation), the family's access tokens are reported inactive.
        if fid is not None and (not isinstance(fid, str) or self.refresh.is_revoked(fid)):
            return None
        if not self._access_subject_known(claims["sub"], claims["client_id"]):
            return None
        # RFC 7662 §2.2: token_type is the type of RFC 6749 §5.1 ("Bearer").
        response = {"active": True, **{name: claims[name] for name in _CLAIM_TYPES}, "token_type": "Bearer"}
        if isinstance(claims.get("cnf"), dict):
            # RFC 9449 §6.2: introspection tells the resource server which key the token is bound to.
            response |= {"cnf": claims["cnf"], "token_type": "DPoP"}
        return ActiveToken(ACCESS, claims["client_id"], fid, response)

    def access_claims(self, token: str) -> dict[str, Any] | None:
        """Return the claims of an unexpired access token we signed, or None (never raises)."""
        if len(token) > MAX_TOKEN or _COMPACT_JWS.fullmatch(token) is None:
            return None
        head, body, signature = token.split(".")
        try:
            # The verifier's strict parser (issue 18): one base64url spelling, no duplicate
            # members, and a deeply nested header is a ValueError, never an uncaught error.
            header = parse_object(decode_segment(head))
        except ValueError:
            return None
        kid, alg = header.get("kid"), header.get("alg")
        # RFC 9068 §4, RFC 8725 §3.11: only tokens typed as access tokens (we always set it).
        if header.get("typ") != ACCESS_TOKEN_TYP or not isinstance(kid, str) or not isinstance(alg, str):
            return None
        if header.keys() != _HEADER_MEMBERS:
            # tokens.mint writes exactly these; anything else (crit with b64, jku, jwk, x5c,
            # cty...) was not minted here (RFC 7515 §4.1.11).
            return None
        key = self.keyring.published(kid)
        # RFC 8725 §3.1: the key pins the algorithm; a revoked or unknown kid fails here.
        if key is None or alg != key.alg:
            return None
        # The JWS checked here, not by jwt.decode: it would parse the header a second time and
        # spell-check every base64 character in Python (a tenth of an introspection's CPU).
        verifier, public = _VERIFIERS[alg], self._public_key(key)
        try:
            signed = verifier.verify(f"{head}.{body}".encode(), public, decode_segment(signature))
            claims = parse_object(decode_segment(body)) if signed else None
        except ValueError:
            return None
        if claims is None or claims.get("iss") != self.settings.issuer:
            return None
        if not all(isinstance(claims.get(n), t) for n, t in _CLAIM_TYPES.items()):
            return None
        now = self.clock()
        if isinstance(claims["exp"], bool) or now >= claims["exp"]:
            return None
        # tokens.mint never writes nbf (registered, so no client's static claim either); should
        # one appear, RFC 7519 §4.1.5 holds it to the clock.
        nbf = claims.get("nbf", 0)
        if isinstance(nbf, bool) or not isinstance(nbf, int | float) or nbf > now:
            return None
        return claims

    def _public_key(self, key: KeyRecord) -> Any:
        """Return the public half of `key`, derived once (a rotated file under one kid: again)."""
        cached = self._public.get(key.kid)
        if cached is None or cached[0] is not key.private_key:
            cached = self._public[key.kid] = (key.private_key, key.private_key.public_key())
        return cached[1]

    def refresh_token(self, token: str) -> ActiveToken | None:
        """Return the refresh token if it is its family's current one and the family lives."""
        if not looks_like_refresh(token):
            return None
        record = self.refresh.lookup(token, now=self.clock())
        if record is None or not self._subject_known(record.subject, record.client_id):
            return None
        return ActiveToken(REFRESH, record.client_id, record.family_id, self._refresh_response(record))

    def _refresh_response(self, record: FamilyRecord) -> dict[str, Any]:
        audience: str | list[str] = list(record.audience)
        if len(record.audience) == 1:
            audience = record.audience[0]  # RFC 7519 §4.1.3: one audience may be a string
        return {
            "active": True,
            "scope": record.scope,
            "client_id": record.client_id,
            "sub": record.subject,
            "aud": audience,
            "iss": self.settings.issuer,
            # The idle expiry, already capped by the absolute one; rounded down, never later.
            "exp": int(record.idle_expiry),
            # When the grant (the family) was issued: rotations keep the grant, not its age.
            "iat": int(record.created),
            # Names this one token without its secret: family id and generation.
            "jti": f"{record.family_id}:{record.generation}",
            "token_type": REFRESH,
        }
