"""Cache an issuer's JWK Set: discovery, HTTP freshness, revalidation and a bounded refetch rate."""

from __future__ import annotations

import logging
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import jwt

from jwtauth.verify.errors import InvalidToken, NotModified, VerifierUnavailable
from jwtauth.verify.fetch import Fetch, takes_headers
from jwtauth.verify.jwk import usable_keys
from jwtauth.verify.strictjson import parse_object

__all__ = ["Clock", "JwksCache"]

# Named, not __name__: operators (and jwtauth's admin CLI) tune the verifier by this name.
log = logging.getLogger("jwtauth.verify")

Clock = Callable[[], float]
"""Return the current time in seconds since the Unix epoch."""


@dataclass(frozen=True)
class _KeySet:
    """Hold one fetched JWK Set: usable keys by kid, and when it goes stale."""

    keys: Mapping[str, jwt.PyJWK]
    expires_at: float
    etag: str | None = None


class JwksCache:
    """Hand out an issuer's signing keys by kid, fetching its JWK Set only when it must.

    Keys come from ``jwks_uri`` or, when it is None, from the ``jwks_uri`` of the
    issuer's RFC 8414 metadata (falling back to OpenID discovery). Nothing is fetched
    until the first ``key_for``. The set is cached for the response's
    ``Cache-Control: max-age`` less its ``Age`` (``default_max_age`` without one), clamped
    to [``min_max_age``, ``max_max_age``], and revalidated with its ETag. An unknown kid
    refreshes the set, but no fetch of any kind follows another within
    ``refetch_interval``. When a refresh fails, the last set keeps serving for up to
    ``stale_if_error`` seconds past its expiry.

    The bounds are taken as given: ``Verifier`` checks them. Safe to share between threads.
    """

    def __init__(
        self,
        *,
        issuer: str,
        jwks_uri: str | None,
        fetch: Fetch,
        clock: Clock,
        refetch_interval: float,
        default_max_age: float,
        min_max_age: float,
        max_max_age: float,
        stale_if_error: float,
    ) -> None:
        """Configure the cache; fetch nothing yet."""
        self._issuer = issuer
        self._jwks_uri = jwks_uri
        self._fetch = fetch
        self._clock = clock
        self._refetch_interval = refetch_interval
        self._default_max_age = default_max_age
        self._min_max_age = min_max_age
        self._max_max_age = max_max_age
        self._stale_if_error = stale_if_error
        self._fetch_takes_headers = takes_headers(fetch)
        self._lock = threading.Lock()
        self._keys: _KeySet | None = None
        self._last_attempt: float | None = None
        self._failing = False

    @property
    def refetch_interval(self) -> float:
        """Return the shortest time between two JWK Set fetches, in seconds."""
        return self._refetch_interval

    def key_for(self, kid: str) -> jwt.PyJWK:
        """Return the key for ``kid``, refreshing the JWK Set when allowed."""
        now = self._clock()
        keys = self._keys
        if keys is not None and now < keys.expires_at and kid in keys.keys:
            return keys.keys[kid]
        # One refresh at a time: threads that queued here find the new set ready.
        with self._lock:
            now = self._clock()
            keys = self._keys
            stale = keys is None or now >= keys.expires_at
            unknown = keys is not None and kid not in keys.keys
            if (stale or unknown) and self._may_fetch(now):
                self._refresh(now, unknown_kid=not stale)
                keys = self._keys
            # Past expiry the set serves only while refreshes fail, and only so long.
            grace = self._stale_if_error if self._failing else 0.0
            if keys is None or now >= keys.expires_at + grace:
                raise VerifierUnavailable("signing keys unavailable")
            key = keys.keys.get(kid)
            if key is not None:
                return key
            if self._failing:
                raise VerifierUnavailable("signing keys unavailable")
            raise InvalidToken("unknown key id")

    def _may_fetch(self, now: float) -> bool:
        """Tell whether enough time passed since the last fetch to try another."""
        # Bounds the fetch rate no matter how many random kids an attacker sends.
        return self._last_attempt is None or now - self._last_attempt >= self._refetch_interval

    def _refresh(self, now: float, *, unknown_kid: bool = False) -> None:
        """Fetch the JWK Set and install it; on failure keep the old one and remember."""
        self._last_attempt = now
        previous = self._keys
        try:
            jwks_uri = self._jwks_uri or self._discover()
            try:
                body, headers = self._fetch_jwks(jwks_uri, previous, unknown_kid=unknown_kid)
            except NotModified as exc:
                if previous is None:
                    raise ValueError("304 Not Modified, but no JWK Set is cached") from None
                # RFC 9111 §4.3.4: a 304 freshens what we hold, with the 304's own headers.
                self._failing = False
                expires_at = self._clock() + self._max_age(exc.headers)
                self._keys = _KeySet(previous.keys, expires_at, _etag(exc.headers) or previous.etag)
                return
            keys = usable_keys(body)
        except Exception:  # any failure of the seam fails closed, as VerifierUnavailable
            log.warning("could not refresh the JWK Set for %s", self._issuer, exc_info=True)
            self._failing = True
            return
        self._failing = False
        self._keys = _KeySet(keys, self._clock() + self._max_age(headers), _etag(headers))

    def _fetch_jwks(
        self, url: str, previous: _KeySet | None, *, unknown_kid: bool
    ) -> tuple[bytes, Mapping[str, str]]:
        """Fetch the JWK Set, conditionally when the fetch can send request headers."""
        if not self._fetch_takes_headers:
            return self._fetch(url)
        request: dict[str, str] = {}
        if previous is not None and previous.etag:
            # RFC 9110 §13.1.2: revalidate what we hold; an unchanged set costs no body.
            request["If-None-Match"] = previous.etag
        if unknown_kid:
            # RFC 9111 §5.2.1.4: a kid we do not know means our copy may be old; make the
            # caches on the way ask the origin instead of serving that same old copy.
            request["Cache-Control"] = "no-cache"
        return self._fetch(url, headers=request)

    def _discover(self) -> str:
        """Find jwks_uri in the issuer's metadata and remember it."""
        errors: list[str] = []
        for url in _metadata_urls(self._issuer):
            try:
                body, _ = self._fetch(url)
                metadata = parse_object(body)
            except Exception as exc:  # try the next well-known location
                errors.append(f"{url}: {exc!r}")
                continue
            # RFC 8414 §3.3: metadata naming another issuer MUST NOT be used.
            if metadata.get("issuer") != self._issuer:
                raise ValueError(f"metadata at {url} names issuer {metadata.get('issuer')!r}")
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str) or not jwks_uri:
                raise ValueError(f"metadata at {url} has no jwks_uri")
            self._jwks_uri = jwks_uri
            return jwks_uri
        raise ValueError("no authorization server metadata: " + "; ".join(errors))

    def _max_age(self, headers: Mapping[str, str]) -> float:
        """Return how long to cache a JWK Set served with ``headers``."""
        lowered = {name.lower(): value for name, value in headers.items()}
        age = _cache_max_age(lowered.get("cache-control", ""))
        if age is None:
            age = self._default_max_age
        # RFC 9111 §4.2.3: a copy that sat in a cache (a CDN) for Age seconds has that much
        # less freshness left; without this a withdrawn key would outlive its max-age.
        age -= _age_seconds(lowered.get("age", ""))
        # Clamped: an issuer saying "no-cache" must not turn every request into a
        # fetch, and one saying "a year" must not pin a key we can never drop.
        return min(max(age, self._min_max_age), self._max_max_age)


def _metadata_urls(issuer: str) -> tuple[str, str]:
    """Return the RFC 8414 §3.1 and OpenID Discovery §4 metadata URLs of ``issuer``."""
    parts = urllib.parse.urlsplit(issuer)
    path = parts.path.rstrip("/")
    # RFC 8414 §3.1: the well-known segment goes between host and path.
    oauth = urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, "/.well-known/oauth-authorization-server" + path, "", "")
    )
    # OpenID Connect Discovery §4: the well-known segment is appended to the issuer.
    return oauth, issuer.rstrip("/") + "/.well-known/openid-configuration"


def _cache_max_age(cache_control: str) -> float | None:
    """Return the max-age of a Cache-Control value; 0 for no-store/no-cache; None if absent."""
    max_age: float | None = None
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-store", "no-cache"):
            return 0.0
        if name == "max-age":
            value = value.strip().strip('"')
            if value.isdigit():
                max_age = float(value)
    return max_age


def _etag(headers: Mapping[str, str]) -> str | None:
    """Return the response's entity tag (RFC 9110 §8.8.3) if it is well-formed."""
    lowered = {name.lower(): value for name, value in headers.items()}
    tag = lowered.get("etag", "").strip()
    bare = tag.removeprefix("W/")
    if 2 <= len(bare) <= 256 and bare[0] == bare[-1] == '"' and '"' not in bare[1:-1]:
        return tag
    return None


def _age_seconds(value: str) -> float:
    """Return the Age header (RFC 9111 §5.1: delta-seconds); 0 when absent or malformed."""
    value = value.strip()
    return float(value) if value.isdigit() else 0.0


# Shared with jwtauth.verify.revocations, which caches its document by the same HTTP rules.
cache_max_age = _cache_max_age
response_etag = _etag
