"""id_tokens (OpenID Connect Core §2, §3.1.3.6, §3.3.2.11, §12.2): pure claims, then signing.

An id_token is signed with the same keys as access tokens but typed `JWT`, never `at+jwt`:
introspection and jwtauth.verify accept only `at+jwt` (RFC 9068 §4), and anything that reads an
id_token back here (an `id_token_hint`) accepts only `JWT` with an `aud` naming a client and no
`client_id`/`scope`, so neither kind can stand in for the other.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from jwt.utils import base64url_encode

from jwtauth.accounts.users import UserDirectory
from jwtauth.config.settings import Settings
from jwtauth.errors import InvalidGrant, TemporarilyUnavailable
from jwtauth.keys import KeyRing
from jwtauth.oidc.claims import released
from jwtauth.oidc.pairwise import Subjects
from jwtauth.tokens.claims import mint

ID_TOKEN_TYP = "JWT"  # noqa: S105  # a media type, not a secret
OPENID = "openid"
# The hash of each signing algorithm (JWA RFC 7518 §3; for EdDSA with Ed25519, SHA-512 as the
# OpenID Foundation's conformance suite and openid-client use).
_HASHES: dict[str, Callable[[bytes], Any]] = {
    "ES256": hashlib.sha256,
    "RS256": hashlib.sha256,
    "PS256": hashlib.sha256,
    "EdDSA": hashlib.sha512,
}


def half_hash(value: str, alg: str) -> str:
    """Return at_hash / c_hash: base64url of the left half of the alg's hash (Core §3.1.3.6)."""
    digest = _HASHES[alg](value.encode("ascii")).digest()
    return base64url_encode(digest[: len(digest) // 2]).decode("ascii")


def id_token_claims(
    *,
    issuer: str,
    subject: str,
    client_id: str,
    now: int,
    ttl: int,
    auth_time: int,
    nonce: str | None = None,
    sid: str | None = None,
    amr: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the claims of an id_token (Core §2) without the hashes."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": client_id,
        "exp": now + ttl,
        "iat": now,
        "auth_time": auth_time,
        # Core §2: azp is the party the token was issued to; with one audience it equals aud,
        # and strict relying parties check it when present.
        "azp": client_id,
    }
    if nonce is not None:
        claims["nonce"] = nonce  # Core §3.1.2.1: exactly as sent
    if sid is not None:
        claims["sid"] = sid  # Front/Back-Channel Logout §2.1
    if amr:
        claims["amr"] = list(amr)
    return {**(extra or {}), **claims}


class IdTokens:
    """Sign id_tokens for users' grants whose scope includes `openid`."""

    def __init__(
        self,
        settings: Settings,
        keyring: KeyRing,
        users: UserDirectory,
        subjects: Subjects,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.keyring, self.users, self.clock = settings, keyring, users, clock
        self.subjects = subjects

    def add_to(
        self,
        body: dict[str, Any],
        *,
        client_id: str,
        username: str,
        scope: Sequence[str],
        auth_time: float,
        nonce: str | None = None,
        sid: str | None = None,
        amr: Sequence[str] = (),
    ) -> None:
        """Add the id_token that rides with a token response (Core §3.1.3.3), if openid was granted."""
        id_token = self.issue(
            client_id=client_id, username=username, scope=scope, auth_time=auth_time, nonce=nonce,
            access_token=body["access_token"], sid=sid, amr=amr,
        )  # fmt: skip
        if id_token is not None:
            body["id_token"] = id_token

    def issue(
        self,
        *,
        client_id: str,
        username: str,
        scope: Sequence[str],
        auth_time: float,
        nonce: str | None = None,
        access_token: str | None = None,
        code: str | None = None,
        sid: str | None = None,
        amr: Sequence[str] = (),
    ) -> str | None:
        """Return a signed id_token, or None when `openid` was not granted (Core §3.1.2.1)."""
        if OPENID not in scope:
            return None
        user = self.users.get(username)
        if user is None:
            raise InvalidGrant("the user of this grant no longer exists")
        key = self.keyring.signer()
        if key is None:
            raise TemporarilyUnavailable("no signing key is available", retry_after=5)
        # Core §5.4: profile/email/... claims go in the id_token only when no access token is
        # issued with it (response_type=id_token); otherwise the userinfo endpoint returns them.
        extra = released(user.claims, scope) if access_token is None and code is None else None
        claims = id_token_claims(
            issuer=self.settings.issuer,
            subject=self.subjects.of(client_id, user.subject),  # Core §8: public or pairwise
            client_id=client_id,
            now=int(self.clock()),
            ttl=self.settings.access_token_ttl,
            auth_time=int(auth_time),
            nonce=nonce,
            sid=sid,
            amr=amr,
            extra=extra,
        )
        if access_token is not None:
            claims["at_hash"] = half_hash(access_token, key.alg)  # Core §3.1.3.6, §3.2.2.9
        if code is not None:
            claims["c_hash"] = half_hash(code, key.alg)  # Core §3.3.2.11
        return mint(claims, key, typ=ID_TOKEN_TYP)
