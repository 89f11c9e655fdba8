"""GET the signed revocation document: what offline verifiers must refuse before tokens expire.

A jwtauth extension (no standard covers it): a JWT of its own `typ`, signed with the access
token keys, listing revoked refresh families and per-subject "not before" times still within
the token horizon. `jwtauth.verify.Verifier(revocations=True)` reads it; see SECURITY.md.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from typing import Any, Final

import falcon

from jwtauth.errors import TemporarilyUnavailable
from jwtauth.keys import KeyRing
from jwtauth.store.revocations import RevocationIndex, Snapshot
from jwtauth.tokens.claims import mint

# Its own type (RFC 8725 §3.11): never accepted as an access token (at+jwt) or an id_token.
from jwtauth.verify.revocations import REVOCATIONS_TYP

# The document's lifetime in max-ages: how long a verifier that cannot refresh keeps using it.
LIFETIME_FACTOR: Final = 5


class RevocationsResource:
    """GET the revocation document: signed, cacheable for max-age, revalidated by ETag."""

    def __init__(
        self,
        *,
        issuer: str,
        keyring: KeyRing,
        index: RevocationIndex,
        max_age: int,
        clock: Callable[[], float],
        max_entries: int = 1000,
    ) -> None:
        self._issuer = issuer
        self._keyring = keyring
        self._index = index
        self._max_age = max_age
        self._clock = clock
        self._max_entries = max_entries

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer the current document, or 304 when the caller holds it already."""
        key = self._keyring.signer()
        if key is None:
            raise TemporarilyUnavailable("no signing key is available", retry_after=5)
        now = self._clock()
        claims = document_claims(
            self._issuer, self._index.snapshot(now=now), now=now, max_age=self._max_age, cap=self._max_entries
        )
        canonical = json.dumps(claims, sort_keys=True, separators=(",", ":")) + key.kid
        etag = '"' + hashlib.sha256(canonical.encode()).hexdigest()[:32] + '"'
        resp.set_header("Cache-Control", f"public, max-age={self._max_age}")
        resp.set_header("ETag", etag)
        tags = {t.strip().removeprefix("W/") for t in (req.get_header("If-None-Match") or "").split(",")}
        if etag in tags:
            resp.status = falcon.HTTP_304  # RFC 9110 §15.4.5
            return
        resp.content_type = "application/jwt"
        resp.data = mint(claims, key, typ=REVOCATIONS_TYP).encode()

    on_head = on_get


def document_claims(issuer: str, snapshot: Snapshot, *, now: float, max_age: int, cap: int) -> dict[str, Any]:
    """Return the document's claims, at most `cap` families and `cap` subjects.

    iat is rounded down to the max-age, so one window's document (and its ETag) is the same
    on every worker. Families past the cap fold into their subjects' "not before", subjects
    past it into one global "not before": the document revokes more, never less.
    """
    iat = int(now // max_age * max_age)
    families = sorted(snapshot.families.items(), key=lambda item: (-item[1], item[0]))
    subjects = dict(snapshot.subjects)
    for family_id, revoked_at in families[cap:]:
        # An access token of the family was issued at or before revoked_at; iat is whole seconds.
        for digest in snapshot.family_subjects.get(family_id, ()):
            subjects[digest] = max(subjects.get(digest, 0.0), math.floor(revoked_at) + 1.0)
    ordered = sorted(subjects.items(), key=lambda item: (-item[1], item[0]))
    claims: dict[str, Any] = {
        "iss": issuer,
        "iat": iat,
        "exp": iat + LIFETIME_FACTOR * max_age,
        "revoked_families": sorted(family_id for family_id, _ in families[:cap]),
        "subjects_not_before": {digest: math.ceil(nb) for digest, nb in ordered[:cap]},
    }
    if len(ordered) > cap:
        claims["not_before"] = max(math.ceil(nb) for _, nb in ordered[cap:])
    return claims
