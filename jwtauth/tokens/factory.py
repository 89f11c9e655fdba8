"""TokenFactory: turn a decided grant into a signed access token and its response body.

Grants decide *what* a token says; this decides *how* it is made (claims, key, signature).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

from jwtauth.accounts.live import Live
from jwtauth.config.clients import Client, User
from jwtauth.config.settings import Settings
from jwtauth.errors import TemporarilyUnavailable
from jwtauth.keys import KeyRing
from jwtauth.oidc.pairwise import Subjects
from jwtauth.tokens.claims import access_claims, mint, token_response


class TokenFactory:
    """Turn a decided grant into a signed access token and the response body."""

    def __init__(
        self,
        settings: Settings,
        keyring: KeyRing,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: secrets.token_urlsafe(16),
        *,
        subjects: Subjects,
        users: Live[User],
    ) -> None:
        self.settings, self.keyring, self.clock, self.new_id = settings, keyring, clock, new_id
        self.subjects, self.users = subjects, users

    def issue(
        self,
        *,
        client: Client,
        subject: str,
        scope: Sequence[str],
        audience: str,
        refresh_token: str | None = None,
        family_id: str | None = None,
        auth_time: int | None = None,
        jkt: str | None = None,
        for_user: bool = True,
    ) -> dict[str, Any]:
        """Sign an access token (bound to the DPoP key `jkt` if given) and return the §5.1 body.

        `subject`: a username, which a pairwise client's token names by its pairwise `sub`
        (Core §8.1, the same as its id_token's), unless `for_user` is False (the client itself).
        """
        key = self.keyring.signer()
        if key is None:
            raise TemporarilyUnavailable("no signing key is available", retry_after=5)
        claims = access_claims(
            issuer=self.settings.issuer,
            subject=self.subjects.access_subject(client.client_id, subject) if for_user else subject,
            client_id=client.client_id,
            audience=audience,
            scope=scope,
            now=int(self.clock()),
            ttl=client.access_token_lifetime or self.settings.access_token_ttl,
            jti=self.new_id(),
            family_id=family_id,
            auth_time=auth_time,
            jkt=jkt,
        )
        # Static claims, checked at load never to name a registered one; the user's are the more
        # specific and win over the client's of the same name.
        user = self.users.table.get(subject) if for_user else None
        static = {**client.claims, **(user.static_claims if user is not None else {})}
        if static:
            claims = {**static, **claims}
        return token_response(mint(claims, key), claims, refresh_token)
