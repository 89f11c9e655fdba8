"""OpenID Connect Back-Channel Logout 1.0: logout tokens, POSTed off the user's path with retries.

When a browser session ends, each client that signed the user in during it and registered a
`backchannel_logout_uri` gets a `logout_token` (§2.4): a JWT typed `logout+jwt` (§2.4, RFC 8725
§3.11, so it is never taken for an id_token or an access token) with `iss`, `aud`, `iat`, `exp`,
`jti`, the logout `events` member, `sub` and `sid`, and never a `nonce`. Delivery runs on a small
thread pool: a short timeout per attempt, a few retries on network errors and 5xx, and every
outcome counted in the metrics; the user's redirect never waits for it.
"""

from __future__ import annotations

import logging
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Protocol

from jwtauth.config.clients import Client
from jwtauth.keys import KeyRing
from jwtauth.oidc.pairwise import Subjects
from jwtauth.tokens.claims import mint

log = logging.getLogger("jwtauth")

LOGOUT_TYP = "logout+jwt"
EVENT = "http://schemas.openid.net/event/backchannel-logout"
TOKEN_TTL = 120  # seconds: the RP checks iat/exp, and the token is used at once
TIMEOUT = 2.0  # seconds per attempt (§2.8: the OP should not wait long)
DELAYS = (1.0, 4.0, 15.0)  # between attempts

# POSTs a form to a URL within a timeout and returns the HTTP status (raises OSError if unreachable).
Deliver = Callable[[str, dict[str, str], float], int]


class Outcomes(Protocol):
    """Where delivery outcomes are counted (observability.Metrics)."""

    def backchannel(self, outcome: str) -> None:
        """Count one delivery outcome: delivered, retried or failed."""
        ...


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a logout token goes where it was registered to, nowhere else


def post_form(url: str, form: dict[str, str], timeout: float) -> int:
    """POST `form` to `url` and return the status; redirects are not followed."""
    body = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(  # noqa: S310  # the operator registered an http(s) URL
        url, data=body, method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def logout_claims(*, issuer: str, client_id: str, sub: str, sid: str, now: int, jti: str) -> dict[str, Any]:
    """Return the claims of a logout token (Back-Channel Logout §2.4); no nonce, ever."""
    return {
        "iss": issuer,
        "aud": client_id,
        "iat": now,
        "exp": now + TOKEN_TTL,
        "jti": jti,
        "sub": sub,
        "sid": sid,
        "events": {EVENT: {}},
    }


class BackChannel:
    """Sign logout tokens and deliver them in the background."""

    def __init__(
        self,
        issuer: str,
        keyring: KeyRing,
        outcomes: Outcomes,
        *,
        deliver: Deliver = post_form,
        delays: Sequence[float] = DELAYS,
        executor: Executor | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        subjects: Subjects,
    ) -> None:
        self.subjects = subjects
        self.issuer, self.keyring, self.outcomes = issuer, keyring, outcomes
        self.deliver, self.delays, self.clock, self.sleep = deliver, tuple(delays), clock, sleep
        self.executor = executor or ThreadPoolExecutor(2, thread_name_prefix="jwtauth-backchannel")

    def notify(self, clients: Iterable[Client], *, sub: str, sid: str) -> int:
        """Queue a logout token for each client with a back-channel URI; return how many."""
        key = self.keyring.signer()
        queued = 0
        for client in clients:
            if client.backchannel_logout_uri is None:
                continue
            if key is None:
                self.outcomes.backchannel("failed")
                log.error("back-channel logout to %s: no signing key", client.client_id)
                continue
            claims = logout_claims(
                issuer=self.issuer, client_id=client.client_id, sid=sid,
                sub=self.subjects.of(client.client_id, sub),  # Core §8: the sub it knows
                now=int(self.clock()), jti=secrets.token_urlsafe(16),
            )  # fmt: skip
            token = mint(claims, key, typ=LOGOUT_TYP)
            self.executor.submit(self._send, client.client_id, client.backchannel_logout_uri, token)
            queued += 1
        return queued

    def _send(self, client_id: str, url: str, token: str) -> None:
        """Deliver one logout token: retry network errors and 5xx, give up on 4xx (§2.8)."""
        for attempt, delay in enumerate((0.0, *self.delays)):
            if delay:
                self.sleep(delay)
            try:
                status = self.deliver(url, {"logout_token": token}, TIMEOUT)
            except OSError as exc:
                status, problem = 0, type(exc).__name__
            else:
                problem = f"HTTP {status}"
            if status in (200, 204):  # §2.8: 200, and 204 from frameworks that send it
                self.outcomes.backchannel("delivered")
                return
            if 400 <= status < 500:
                break
            if attempt < len(self.delays):
                self.outcomes.backchannel("retried")
        self.outcomes.backchannel("failed")
        log.warning("back-channel logout to client %s failed: %s", client_id, problem)
