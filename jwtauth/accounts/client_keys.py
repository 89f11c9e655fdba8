"""A private_key_jwt client's public keys: from its inline `jwks`, or fetched from its `jwks_uri`.

Remote sets go through the SSRF-safe fetcher of client ID metadata documents (resolve first,
public addresses only, pinned connection, no redirects, byte cap, short deadline), are cached
in this process for the response's max-age within [1 min, 1 day], and an unknown `kid` fetches
again at most once per REFETCH_INTERVAL per URL, so random kids cannot become a fetch storm
(RFC 7517 §4.5: a rotated key appears under a new kid). A failing fetch keeps the last set.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import jwt

from jwtauth.accounts.client_documents import cache_ttl
from jwtauth.accounts.document_fetch import DocumentFetcher, FetchRefused
from jwtauth.config.clients import Client
from jwtauth.verify.jwk import usable_keys

log = logging.getLogger("jwtauth")

REFETCH_INTERVAL: Final = 10.0
MAX_JWKS_BYTES: Final = 16 * 1024  # ten RSA-4096 keys fit; nothing a client needs is bigger
JWKS_MEDIA_TYPES: Final = ("application/json", "application/jwk-set+json")
Keys = Mapping[str, jwt.PyJWK]


@functools.lru_cache(maxsize=256)
def _inline(jwks: str) -> Keys:
    """Return the usable keys of an inline set (validated at load, so parsed once per set)."""
    return usable_keys(jwks.encode())


@dataclass
class _Remote:
    keys: Keys
    expires_at: float
    attempted_at: float


def jwks_fetcher(*, allow_insecure_loopback: bool) -> DocumentFetcher:
    """Return the SSRF-safe fetcher configured for JWK Sets."""
    return DocumentFetcher(
        allow_insecure_loopback=allow_insecure_loopback,
        max_bytes=MAX_JWKS_BYTES,
        media_types=JWKS_MEDIA_TYPES,
    )


class ClientKeys:
    """Find the key a client's assertion names; safe to share between threads."""

    def __init__(self, fetcher: DocumentFetcher, clock: Callable[[], float]) -> None:
        self._fetcher, self._clock = fetcher, clock
        self._remote: dict[str, _Remote] = {}
        self._lock = threading.Lock()

    def key_for(self, client: Client, kid: str | None) -> jwt.PyJWK | None:
        """Return the client's key with this kid (without one: its only key), or None."""
        if client.jwks is not None:
            return _pick(_inline(client.jwks), kid)
        if client.jwks_uri is None:
            return None
        return self._remote_key(client.jwks_uri, kid)

    def _remote_key(self, uri: str, kid: str | None) -> jwt.PyJWK | None:
        now = self._clock()
        with self._lock:
            entry = self._remote.get(uri)
            found = _pick(entry.keys, kid) if entry is not None else None
            if entry is not None and now < entry.expires_at and found is not None:
                return found
            if entry is not None and now - entry.attempted_at < REFETCH_INTERVAL:
                return found  # fetched a moment ago: an unknown kid waits for the next window
            keys = entry.keys if entry is not None else {}
            # Claimed before fetching, so concurrent requests do not fetch the same URL again.
            self._remote[uri] = _Remote(keys, entry.expires_at if entry else 0.0, now)
        fetched = self._fetch(uri)
        with self._lock:
            if fetched is not None:
                keys, ttl = fetched
                self._remote[uri] = _Remote(keys, now + ttl, now)
        return _pick(keys, kid)

    def _fetch(self, uri: str) -> tuple[Keys, int] | None:
        try:
            document = self._fetcher.fetch(uri)
            return usable_keys(document.body), cache_ttl(document.cache_control)
        except (FetchRefused, ValueError) as exc:
            log.warning("client JWK Set %s unusable: %s", uri, exc)
            return None


def _pick(keys: Keys, kid: str | None) -> jwt.PyJWK | None:
    if kid is not None:
        return keys.get(kid)
    # RFC 7515 §4.1.4: kid is optional; without it only a set of one key is unambiguous.
    return next(iter(keys.values())) if len(keys) == 1 else None
