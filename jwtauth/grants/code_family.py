"""The grant an authorization code carries, and the refresh family it starts, prepared at issue.

So that the exchange is one Redis round trip: a script may touch only the keys it declares
(Cluster routes by them, Dragonfly and Redis Enterprise's proxy enforce them), and the token
request knows only the code, not the user's index or the session. So /authorize draws the
grant's id from the code (CodeStore.family_id, under the pepper) and writes, with the code,
the subject-index entry and the session link; the code's take then checks the grant was not
ended and, for a client that may refresh, creates the family of that id and binds it to the
code in its own atomic step (jwtauth.store.codes). Where that cannot be (Cluster), or for a
code issued without it, the exchange starts the family in a second trip.

Ending a session, or every session of the user ("log out everywhere"), bars the grants those
entries name (a tombstone), so a code not yet redeemed dies with them, whatever its client
(node-oidc-provider and Keycloak refuse such codes too), and "log out everywhere" drops the
entries. A code that is never redeemed leaves its entries naming no family: the index entry
until the code's expiry (a client that may refresh: the family's latest end), the session
link with its session.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from jwtauth.config.clients import Client
from jwtauth.config.settings import Settings
from jwtauth.grants.base import refresh_lifetimes
from jwtauth.store import CodeAhead, CodeRecord, RefreshStore
from jwtauth.store.sessions import SessionMarks


def links_to_session(scope: Sequence[str]) -> bool:
    """Whether a family granted `scope` in a browser session is revoked with it (RP-Initiated Logout).

    Not when granted offline_access: such families are meant to outlive the session (Core §11).
    """
    return "offline_access" not in scope


def ahead_of_code(
    settings: Settings,
    client: Client,
    refresh: RefreshStore,
    sessions: SessionMarks,
    record: CodeRecord,
    *,
    now: float,
    ttl: float,
) -> Callable[[str], CodeAhead]:
    """Return what CodeStore.issue writes ahead of the code's grant (and family, if one may start)."""
    lifetimes = refresh_lifetimes(settings, client)
    # The latest the grant can end: the code's expiry, or, redeemed at its last moment, its
    # family's absolute lifetime (the take caps it there if the client's lifetime grows).
    until = now + ttl + (lifetimes[1] if lifetimes is not None else 0)

    def ahead(family_id: str) -> CodeAhead:
        if lifetimes is None:  # the code is the whole grant
            prepared = refresh.ahead_of_grant(family_id, subject=record.subject, now=now, until=until)
        else:
            prepared = refresh.ahead_of_code(
                family_id, subject=record.subject, auth_time=record.auth_time, sid=record.sid,
                now=now, bound=until,
            )  # fmt: skip
        # offline_access keeps a family past the session; without one it keeps nothing.
        if record.sid is None or (lifetimes is not None and not links_to_session(record.scope.split())):
            return prepared
        link = sessions.linking(record.subject, record.sid, family_id, until=until, now=now)
        return replace(prepared, calls=(*prepared.calls, link))

    return ahead
