"""Follow an issuer's signed revocation document, so revoked tokens are refused offline.

jwtauth publishes, under the metadata name ``jwtauth_revocations_uri``, a JWT of type
``jwtauth-revocations+jwt`` signed with the access-token keys: revoked refresh families
(``revoked_families``, matched against a token's ``fid``), per-subject "not before" times
(``subjects_not_before``, keyed by ``subject_digest``) and an optional global ``not_before``.
It is fetched only when the copy held is older than its ``max-age``: no call per request.

Fails closed: a document that is forged, unsigned, of another type or issuer, expired, or
older than the one held is refused and the held one stays in use until its own ``exp``;
after that (or before any good document) every token is refused with VerifierUnavailable.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import jwt

from jwtauth.verify.errors import InvalidToken, NotModified, VerifierUnavailable
from jwtauth.verify.fetch import Fetch, takes_headers
from jwtauth.verify.jwk import ALLOWED_ALGORITHMS
from jwtauth.verify.jwks import Clock, JwksCache, cache_max_age, response_etag
from jwtauth.verify.strictjson import decode_segment, parse_object

__all__ = ["REVOCATIONS_TYP", "RevocationList", "subject_digest"]

log = logging.getLogger("jwtauth.verify")

REVOCATIONS_TYP: Final = "jwtauth-revocations+jwt"
METADATA_NAME: Final = "jwtauth_revocations_uri"
_DEFAULT_MAX_AGE: Final = 30.0


def subject_digest(issuer: str, subject: str) -> str:
    """Return how the document names a subject: SHA-256 over issuer and subject, hex."""
    return hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()


@dataclass(frozen=True)
class _Document:
    """One verified revocation document and when to fetch the next."""

    families: frozenset[str]
    subjects: Mapping[str, float]
    not_before: float
    iat: float
    exp: float
    fresh_until: float
    etag: str | None


class RevocationList:
    """Hold the issuer's latest verified revocation document; refuse what it revokes."""

    def __init__(
        self,
        *,
        issuer: str,
        jwks: JwksCache,
        fetch: Fetch,
        clock: Clock,
        refetch_interval: float,
        leeway: float,
    ) -> None:
        """Configure the list; fetch nothing yet."""
        self._issuer = issuer
        self._jwks = jwks
        self._fetch = fetch
        self._clock = clock
        self._interval = refetch_interval
        self._leeway = leeway
        self._takes_headers = takes_headers(fetch)
        self._jws = jwt.PyJWS(options={"enforce_minimum_key_length": True})
        self._lock = threading.Lock()
        self._uri: str | None = None
        self._doc: _Document | None = None
        self._last_attempt: float | None = None

    def check(self, claims: Mapping[str, Any]) -> None:
        """Raise InvalidToken if verified ``claims`` are revoked; VerifierUnavailable if unknown."""
        doc = self._current()
        family = claims.get("fid")
        if isinstance(family, str) and family in doc.families:
            raise InvalidToken("token revoked")
        iat = float(claims["iat"])  # checked numeric by the verifier
        subject_nb = doc.subjects.get(subject_digest(self._issuer, claims["sub"]), 0.0)
        if iat < max(subject_nb, doc.not_before):
            raise InvalidToken("token revoked")

    def _current(self) -> _Document:
        """Return a usable document, refreshing it when its max-age has passed."""
        now = self._clock()
        doc = self._doc
        if doc is not None and now < doc.fresh_until:
            return doc
        with self._lock:
            now = self._clock()
            if (self._doc is None or now >= self._doc.fresh_until) and self._may_fetch(now):
                self._refresh(now)
            doc = self._doc
            # Past its exp a document may miss revocations: refuse rather than guess.
            if doc is None or now >= doc.exp + self._leeway:
                raise VerifierUnavailable("revocation list unavailable")
            return doc

    def _may_fetch(self, now: float) -> bool:
        return self._last_attempt is None or now - self._last_attempt >= self._interval

    def _refresh(self, now: float) -> None:
        """Fetch and verify the document; on any failure keep the one held."""
        self._last_attempt = now
        held = self._doc
        try:
            uri = self._uri or self._discover()
            request: dict[str, str] = {}
            if held is not None and held.etag:
                request["If-None-Match"] = held.etag
            try:
                body, headers = self._fetch(uri, headers=request) if self._takes_headers else self._fetch(uri)
            except NotModified as exc:
                if held is None:
                    raise ValueError("304 Not Modified, but no document is held") from None
                fresh = min(self._clock() + self._max_age(exc.headers), held.exp)
                self._doc = _replace_freshness(held, fresh)
                return
            self._doc = self._verified(body, headers, held)
        except Exception:  # any failure keeps the held document, which fails closed at its exp
            log.warning("could not refresh the revocation document of %s", self._issuer, exc_info=True)

    def _verified(self, body: bytes, headers: Mapping[str, str], held: _Document | None) -> _Document:
        """Return the document in ``body`` if it is the issuer's, signed, current; raise otherwise."""
        token = body.decode("ascii").strip()
        if token.count(".") != 2:
            raise InvalidToken("malformed revocation document")
        header = parse_object(decode_segment(token.split(".", 1)[0]))
        alg, kid = header.get("alg"), header.get("kid")
        # RFC 8725 §3.11: only this type; an access token or id_token signed by the same keys is not one.
        if header.get("typ") != REVOCATIONS_TYP or alg not in ALLOWED_ALGORITHMS or not isinstance(kid, str):
            raise InvalidToken("not a revocation document")
        if {"jku", "x5u", "jwk", "x5c", "crit"} & header.keys():
            raise InvalidToken("revocation document names its own key")
        key = self._jwks.key_for(kid)
        if alg != key.algorithm_name:
            raise InvalidToken("algorithm does not match key")
        payload = self._jws.decode_complete(token, key=key, algorithms=[key.algorithm_name])["payload"]
        claims = parse_object(payload)
        now = self._clock()
        iat, exp = _number(claims, "iat"), _number(claims, "exp")
        if claims.get("iss") != self._issuer or now >= exp + self._leeway or iat > now + self._leeway:
            raise InvalidToken("revocation document is not current")
        if held is not None and iat < held.iat:
            raise InvalidToken("revocation document is older than the one held")  # a rollback
        return _Document(
            families=frozenset(_strings(claims.get("revoked_families", []))),
            subjects=_not_befores(claims.get("subjects_not_before", {})),
            not_before=_number(claims, "not_before") if "not_before" in claims else 0.0,
            iat=iat,
            exp=exp,
            fresh_until=min(now + self._max_age(headers), exp),
            etag=response_etag(headers),
        )

    def _discover(self) -> str:
        """Find the document's URL in the issuer's RFC 8414 metadata."""
        parts = urllib.parse.urlsplit(self._issuer)
        path = parts.path.rstrip("/")
        url = urllib.parse.urlunsplit(
            (parts.scheme, parts.netloc, "/.well-known/oauth-authorization-server" + path, "", "")
        )
        metadata = parse_object(self._fetch(url)[0])
        if metadata.get("issuer") != self._issuer:  # RFC 8414 §3.3
            raise ValueError(f"metadata at {url} names another issuer")
        uri = metadata.get(METADATA_NAME)
        if not isinstance(uri, str) or not uri:
            raise ValueError(f"metadata at {url} publishes no {METADATA_NAME}")
        self._uri = uri
        return uri

    def _max_age(self, headers: Mapping[str, str]) -> float:
        """Return how long the document is fresh: its max-age, at least the refetch interval."""
        lowered = {name.lower(): value for name, value in headers.items()}
        age = cache_max_age(lowered.get("cache-control", ""))
        return max(_DEFAULT_MAX_AGE if age is None else age, self._interval)


def _replace_freshness(doc: _Document, fresh_until: float) -> _Document:
    return _Document(doc.families, doc.subjects, doc.not_before, doc.iat, doc.exp, fresh_until, doc.etag)


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidToken(f"revocation document: invalid {name}")
    return float(value)


def _strings(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidToken("revocation document: invalid revoked_families")
    return value


def _not_befores(value: object) -> dict[str, float]:
    if not isinstance(value, dict):
        raise InvalidToken("revocation document: invalid subjects_not_before")
    return {str(digest): _number(value, digest) for digest in value}
