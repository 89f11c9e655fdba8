"""Cache client ID metadata documents in Redis: a cache entry with a TTL, never a registration.

    {prefix}{doc:<sha256(url)>}   string: b"ok:" + the validated document, or b"fail:" + the reason

One key per document URL, written with SET … EX, so every worker and host shares one fetch per
document per lifetime, and a failing URL is not refetched on every request while it is cached.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from jwtauth.store.redisclient import checked_prefix, tagged_key


@dataclass(frozen=True)
class CachedDocument:
    """A cached outcome: the document's bytes, or why it could not be used."""

    body: bytes | None
    failure: str | None


class DocumentCache:
    """Keep fetched documents and failures for a while, shared by every worker."""

    def __init__(self, store: Any, *, prefix: str) -> None:
        self.store, self.prefix = store, checked_prefix(prefix)

    def _key(self, url: str) -> str:
        # Kind "doc": "d" already names device requests (store/device.py).
        return tagged_key(self.prefix, "doc", hashlib.sha256(url.encode()).hexdigest())

    def get(self, url: str) -> CachedDocument | None:
        """Return the cached outcome for `url`, or None."""
        value = self.store.get(self._key(url))
        if value is None:
            return None
        kind, _, rest = bytes(value).partition(b":")
        if kind == b"ok":
            return CachedDocument(rest, None)
        return CachedDocument(None, rest.decode("utf-8", "replace"))

    def put(self, url: str, body: bytes, ttl: int) -> None:
        """Cache a validated document for `ttl` seconds."""
        self.store.set(self._key(url), b"ok:" + body, ex=max(1, ttl))

    def put_failure(self, url: str, reason: str, ttl: int) -> None:
        """Cache a failure for `ttl` seconds."""
        self.store.set(self._key(url), b"fail:" + reason.encode(), ex=max(1, ttl))
