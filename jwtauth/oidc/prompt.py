"""What /authorize does for a request given the browser's session (OpenID Connect Core §3.1.2.1).

Pure rules: `interaction` reads prompt, max_age, login_hint, id_token_hint from the request;
`decide` says whether to answer at once (GRANT), ask for consent only (CONSENT) or ask for the
password (LOGIN), or raises the error that goes back to the redirect URI for prompt=none.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from jwtauth.errors import ConsentRequired, InvalidRequest, LoginRequired
from jwtauth.oidc.session import Session

PROMPTS = ("none", "login", "consent", "select_account")
MAX_HINT = 8 * 1024


class Step(enum.Enum):
    """What the authorization endpoint shows or does next."""

    GRANT = "grant"  # answer the client now, no page
    CONSENT = "consent"  # the consent page, without password fields
    LOGIN = "login"  # the sign-in page


@dataclass(frozen=True)
class Interaction:
    """The OpenID Connect parameters that govern sign-in and consent."""

    prompt: frozenset[str] = frozenset()
    max_age: int | None = None
    login_hint: str | None = None
    id_token_hint: str | None = None


def interaction(params: Mapping[str, str]) -> Interaction:
    """Return the request's interaction parameters, or raise InvalidRequest (Core §3.1.2.1)."""
    words = params.get("prompt", "").split()
    unknown = [w for w in words if w not in PROMPTS]
    if unknown:
        raise InvalidRequest(f"prompt value {unknown[0][:40]!r} is not one of {', '.join(PROMPTS)}")
    prompt = frozenset(words)
    if "none" in prompt and len(prompt) > 1:
        raise InvalidRequest("prompt=none cannot be combined with other values")
    raw_age = params.get("max_age")
    max_age = None
    if raw_age is not None:
        if not raw_age.isascii() or not raw_age.isdigit() or len(raw_age) > 10:
            raise InvalidRequest("max_age must be a number of seconds")
        max_age = int(raw_age)
    hint = params.get("id_token_hint")
    if hint is not None and len(hint) > MAX_HINT:
        raise InvalidRequest("id_token_hint is too long")
    return Interaction(prompt, max_age, params.get("login_hint"), hint)


def decide(
    asked: Interaction,
    session: Session | None,
    *,
    client_id: str,
    first_party: bool,
    audience: str,
    scope: Sequence[str],
    hint_subject: str | None,
    now: float,
) -> Step:
    """Return the next step; for prompt=none raise login_required / consent_required."""
    usable = session is not None and (hint_subject is None or hint_subject == session.sub)
    # Core §3.1.2.1: max_age elapsed means actively re-authenticate; max_age=0 always does.
    stale = session is not None and asked.max_age is not None and now - session.auth_time >= asked.max_age
    consented = first_party or (session is not None and session.consented(client_id, audience, scope))
    if "none" in asked.prompt:
        # Core §3.1.2.6: no UI at all; the client learns why in the error.
        if not usable or stale:
            raise LoginRequired("the user is not signed in here (prompt=none)")
        if not consented:
            raise ConsentRequired("the user has not consented to this client (prompt=none)")
        return Step.GRANT
    if not usable or stale or {"login", "select_account"} & asked.prompt:
        return Step.LOGIN
    if "consent" in asked.prompt or not consented:
        return Step.CONSENT
    return Step.GRANT
