"""OpenID Connect RP-Initiated Logout 1.0: which request to trust, and what ending a session does.

The rules, in the order the spec gives them (§2, §3):
- an `id_token_hint` must be an id_token we issued (expired is fine); it names the client when
  `client_id` is absent, and must name `client_id` when both are sent;
- `post_logout_redirect_uri` needs a known client and must equal one of its registered
  `post_logout_redirect_uris` exactly; anything else is shown as an error page and never
  followed, so /logout is not an open redirector;
- without a hint naming the signed-in user, the user confirms (a button `name="logout"`).

Ending a session marks it ended in Redis (a copied cookie dies too), revokes the refresh families
started in it (not those granted offline_access, which were never tied to it), bars the codes it
issued that are not yet redeemed, and sends a back-channel logout token to each client that
signed the user in during it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from jwtauth.accounts.clients import ClientRegistry
from jwtauth.config.clients import Client
from jwtauth.oidc.backchannel import BackChannel
from jwtauth.oidc.hint import Hint, IdTokenHints
from jwtauth.oidc.session import Session
from jwtauth.store import RefreshStore
from jwtauth.store.sessions import SessionMarks

# The parameters a logout request carries from the confirmation page to its POST (§2).
LOGOUT_PARAMS = (
    "id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales", "logout_hint",
)  # fmt: skip


class LogoutRefused(Exception):
    """A logout request that must not be followed anywhere: show an error page."""


@dataclass(frozen=True)
class LogoutRequest:
    """A checked logout request."""

    client: Client | None
    redirect_uri: str | None
    state: str | None
    hint: Hint | None
    params: dict[str, str]

    def needs_confirmation(self, session: Session | None) -> bool:
        """Tell whether the user must confirm: a session, and no hint that it is this user's."""
        return session is not None and (self.hint is None or self.hint.sub != session.sub)

    def location(self) -> str | None:
        """Return where to send the browser afterwards, with `state` (§3), or None."""
        if self.redirect_uri is None:
            return None
        parts = urlsplit(self.redirect_uri)
        if self.state is None:
            return self.redirect_uri
        extra = urlencode([("state", self.state)], quote_via=quote)
        query = f"{parts.query}&{extra}" if parts.query else extra
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def logout_request(params: Mapping[str, str], clients: ClientRegistry, hints: IdTokenHints) -> LogoutRequest:
    """Return the checked request, or raise LogoutRefused with a message for the user."""
    hint = None
    if "id_token_hint" in params:
        hint = hints.read(params["id_token_hint"])
        if hint is None:
            raise LogoutRefused("The sign-out link carries an id_token this server did not issue.")
    client_id = params.get("client_id")
    if client_id is None and hint is not None and len(hint.audience) == 1:
        client_id = hint.audience[0]
    if client_id is not None and hint is not None and client_id not in hint.audience:
        raise LogoutRefused("The sign-out link's id_token belongs to another application.")
    client = clients.get(client_id) if client_id is not None else None
    if client_id is not None and client is None:
        raise LogoutRefused("The application that sent you here is not registered.")
    redirect = params.get("post_logout_redirect_uri")
    if redirect is not None:
        if client is None:
            raise LogoutRefused("The sign-out link does not say which application it comes from.")
        if redirect not in client.post_logout_redirect_uris:  # §3: exact match, nothing else
            raise LogoutRefused("The application asked to send you to an address it has not registered.")
    kept = {name: params[name] for name in LOGOUT_PARAMS if name in params}
    return LogoutRequest(client, redirect, params.get("state"), hint, kept)


class SessionEnder:
    """End browser sessions: the Redis mark, the session's refresh families, the back-channel."""

    def __init__(
        self, marks: SessionMarks, refresh: RefreshStore, clients: ClientRegistry, backchannel: BackChannel
    ) -> None:
        self.marks, self.refresh, self.clients, self.backchannel = marks, refresh, clients, backchannel

    def end(self, session: Session, *, now: float) -> None:
        """End `session` everywhere it counts."""
        self.marks.end(session.username, session.sid)
        # Barred too: a code of this session not yet redeemed is dead, whatever its client.
        self.refresh.revoke_families(
            self.marks.grants(session.username, session.sid, now=now), now=now, bar=True,
            reason=f"revoked {now!r}",
        )  # fmt: skip
        known = [self.clients.get(c) for c in session.clients]
        self.backchannel.notify([c for c in known if c is not None], sub=session.sub, sid=session.sid)
