"""The userinfo rules (OpenID Connect Core §5.3): which token, whose claims, which errors.

The access token comes in the Authorization header or, for a POST, in the form body
(RFC 6750 §2.1, §2.2), never both and never in the URL. It must be an active access token of
ours (signature, issuer, expiry, family not revoked: TokenReader) granted `openid`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jwtauth.accounts.users import UserDirectory
from jwtauth.errors import BearerError, InsufficientScope, InvalidToken, MissingToken
from jwtauth.oidc.claims import released
from jwtauth.oidc.idtoken import OPENID
from jwtauth.oidc.pairwise import Subjects
from jwtauth.tokens.reader import TokenReader


def bearer_token(authorization: str | None, form: Mapping[str, str] | None) -> str:
    """Return the one access token of the request, or raise the RFC 6750 §3.1 error."""
    header = None
    if authorization is not None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip() or " " in value.strip():
            raise BearerError("send the access token as Authorization: Bearer <token>")
        header = value.strip()
    body = (form or {}).get("access_token")
    if header is not None and body is not None:
        raise BearerError("send the access token one way only (RFC 6750 section 2)")
    token = header or body
    if not token:
        raise MissingToken()  # RFC 6750 §3.1: no credentials, no error code
    return token


class UserInfo:
    """Answer userinfo requests: `sub` and the claims the token's scope releases."""

    def __init__(self, reader: TokenReader, users: UserDirectory, subjects: Subjects | None = None) -> None:
        self.reader, self.users = reader, users
        self.subjects = subjects

    def claims(self, token: str) -> dict[str, Any]:
        """Return the userinfo response for `token`, or raise InvalidToken / InsufficientScope."""
        return self.answer(token)[1]

    def answer(self, token: str) -> tuple[str, dict[str, Any]]:
        """Return the token's client and the userinfo response (see `claims`)."""
        found = self.reader.access_token(token)
        if found is None:
            raise InvalidToken("the access token is invalid, expired or revoked")
        scope = str(found.response["scope"]).split()
        if OPENID not in scope:
            raise InsufficientScope("the access token was not granted the openid scope")
        # Access tokens name the user by username (RFC 9068 §2.2), a pairwise client's by its
        # pairwise sub; userinfo answers the OpenID subject the client's id_token carries, public
        # or pairwise (Core §5.3.2, §8).
        sub, client_id = str(found.response["sub"]), found.client_id
        subjects = self.subjects
        user = self.users.get(sub) if subjects is None else subjects.user_of_access(client_id, sub)
        if user is None:
            raise InvalidToken("the user of this access token no longer exists")
        seen = user.subject if subjects is None else subjects.of(client_id, user.subject)
        return client_id, {"sub": seen, **released(user.claims, scope)}
