"""Clients that are URLs: client ID metadata documents (draft-ietf-oauth-client-id-metadata-document).

A `client_id` that is an https URL names a JSON document the client's developer publishes; we
fetch it (accounts/document_fetch.py), check it, and turn it into a public Client for as long as
it is cached. Nothing is registered: the cache (Redis, shared, with a TTL; and this process's
own small copy) is the only state. What such a client may get is the operator's choice in
[client_id_metadata] (scopes, audiences), never the document's alone.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

from jwtauth.accounts.document_fetch import DocumentFetcher, FetchRefused
from jwtauth.config.client_metadata import ClientMetadataSettings
from jwtauth.config.clients import Client, check_redirect_uri
from jwtauth.config.reader import ConfigError, TableReader
from jwtauth.store.connection import STORE_ERRORS, unavailable
from jwtauth.store.documents import CachedDocument, DocumentCache
from jwtauth.verify.strictjson import parse_object

log = logging.getLogger("jwtauth")

MAX_URL: Final = 1024
TTL_FLOOR, TTL_DEFAULT, TTL_CEILING = 60, 600, 86400  # seconds a document is trusted unfetched
FAILURE_TTL: Final = 30  # a failing URL is not refetched on every request, nor for long
LOCAL_ENTRIES: Final = 256
_MAX_AGE: Final = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)
_GRANTS: Final = frozenset({"authorization_code", "refresh_token"})
# RFC 7591 §2 defaults the method to client_secret_basic; a document cannot carry a secret.
_AUTH_METHODS: Final = frozenset({"none"})


class DocumentRefused(Exception):
    """The client ID cannot be used; the message is safe to show the user and to log."""


def cache_ttl(cache_control: str) -> int:
    """Return how long to keep a document: its max-age within [floor, ceiling] (RFC 9111 §5.2.2.1)."""
    lowered = cache_control.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return TTL_FLOOR  # honoured as far as the floor allows: we will not fetch per request
    found = _MAX_AGE.search(cache_control)
    seconds = int(found.group(1)) if found else TTL_DEFAULT
    return min(max(seconds, TTL_FLOOR), TTL_CEILING)


class ClientDocuments:
    """Resolve URL client IDs to clients, through the caches and the SSRF-safe fetcher."""

    def __init__(
        self,
        settings: ClientMetadataSettings,
        default_audience: str,
        cache: DocumentCache,
        fetcher: DocumentFetcher,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.cache, self.fetcher, self.clock = settings, cache, fetcher, clock
        self.audiences = settings.audiences or (default_audience,)
        self._local: dict[str, tuple[float, Client | str]] = {}
        self._lock = threading.Lock()  # request threads share this process's copy

    def handles(self, client_id: str) -> bool:
        """Tell whether `client_id` is meant as a document URL (configured ids hold no ':')."""
        return self.settings.enabled and client_id.startswith(("https://", "http://"))

    def client(self, client_id: str) -> Client:
        """Return the client the document at `client_id` describes, or raise DocumentRefused."""
        now = self.clock()
        local = self._local.get(client_id)
        if local is not None and local[0] > now:
            return _outcome(local[1])
        host = self._checked_url(client_id)
        cached = self._shared(lambda: self.cache.get(client_id))
        if cached is not None and cached.failure is not None:
            return self._remember(client_id, cached.failure, now + FAILURE_TTL)
        if cached is not None and cached.body is not None:
            return self._remember(client_id, self._build(client_id, host, cached.body), now + TTL_FLOOR)
        try:
            fetched = self.fetcher.fetch(client_id)
            client = self._build(client_id, host, fetched.body)
        except (FetchRefused, DocumentRefused) as exc:
            reason = str(exc)
            log.info("client metadata document %s refused: %s", client_id, reason)
            self._shared(lambda: self.cache.put_failure(client_id, reason, FAILURE_TTL))
            return self._remember(client_id, reason, now + FAILURE_TTL)
        ttl = cache_ttl(fetched.cache_control)
        self._shared(lambda: self.cache.put(client_id, fetched.body, ttl))
        return self._remember(client_id, client, now + min(ttl, TTL_FLOOR))

    @staticmethod
    def _shared(operation: Callable[[], CachedDocument | None]) -> CachedDocument | None:
        """Run a shared-cache operation; while Redis is down, go on as if it missed.

        The sign-in page stays usable (this process's copy and the fetch still work); what
        needs Redis for real, the code, answers 503 later in its own place.
        """
        try:
            return operation()
        except STORE_ERRORS as exc:
            if not unavailable(exc):
                raise  # a bug, not an outage
            log.warning("document cache unavailable: %s", type(exc).__name__)
            return None

    def _remember(self, client_id: str, outcome: Client | str, until: float) -> Client:
        """Keep an outcome in this process for a while (bounded), then return or raise it."""
        with self._lock:
            if len(self._local) >= LOCAL_ENTRIES and client_id not in self._local:
                self._local.pop(next(iter(self._local)))  # the oldest entry goes first
            self._local[client_id] = (until, outcome)
        return _outcome(outcome)

    def _checked_url(self, url: str) -> str:
        """Return the URL's host if it may name a document (draft §3), else raise DocumentRefused."""
        if len(url) > MAX_URL or not url.isascii() or not url.isprintable() or " " in url:
            raise DocumentRefused("the client_id is not a usable URL")
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
        except ValueError:
            raise DocumentRefused("the client_id is not a usable URL") from None
        if parts.scheme != "https" and not (parts.scheme == "http" and self.settings.allow_insecure_loopback):
            raise DocumentRefused("the client_id must be an https URL")
        if not host or "@" in parts.netloc or parts.fragment or "#" in url or parts.query:
            raise DocumentRefused("the client_id URL must have a host and no user, query or fragment")
        segments = parts.path.split("/")
        if parts.path in ("", "/") or any(s in (".", "..") for s in segments) or "\\" in url:
            raise DocumentRefused("the client_id URL must have a path without . or .. segments")
        if not self.settings.host_allowed(host):
            raise DocumentRefused(f"documents from {host} are not accepted here")
        return host

    def _build(self, client_id: str, host: str, body: bytes) -> Client:
        """Check the document and return its client (draft §4; RFC 7591 §2 field meanings)."""
        try:
            doc = parse_object(body)
        except ValueError:
            raise DocumentRefused("the document is not one JSON object") from None
        if doc.get("client_id") != client_id:
            raise DocumentRefused("the document's client_id differs from its URL")  # draft §4.1
        if "client_secret" in doc or "client_secret_expires_at" in doc:
            raise DocumentRefused("a client metadata document must not carry a client secret")
        method = doc.get("token_endpoint_auth_method", "none")
        if method not in _AUTH_METHODS:
            raise DocumentRefused("token_endpoint_auth_method must be none (public client, PKCE)")
        grants = _strings(doc, "grant_types", ["authorization_code"])
        if "authorization_code" not in grants or not set(grants) <= _GRANTS:
            raise DocumentRefused("grant_types may only be authorization_code and refresh_token")
        if _strings(doc, "response_types", ["code"]) != ["code"]:
            raise DocumentRefused("response_types may only be code")
        uris = _redirect_uris(client_id, doc)
        asked = _scope(doc)
        allowed = tuple(s for s in self.settings.scopes if asked is None or s in asked)
        return Client(
            client_id=client_id,
            name=_name(doc, host),
            secret_hash=None,
            redirect_uris=uris,
            grant_types=frozenset(grants),
            scopes=frozenset(allowed),
            default_scope=allowed if asked is not None else (),
            audiences=self.audiences,
            require_pkce=True,  # RFC 9700 §2.1.1: a public client
        )


def _outcome(outcome: Client | str) -> Client:
    if isinstance(outcome, str):
        raise DocumentRefused(outcome)
    return outcome


def _strings(doc: dict[str, Any], key: str, default: list[str]) -> list[str]:
    value = doc.get(key, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DocumentRefused(f"{key} must be a list of strings")
    return value


def _redirect_uris(client_id: str, doc: dict[str, Any]) -> tuple[str, ...]:
    uris = _strings(doc, "redirect_uris", [])
    if not uris or len(uris) > 20:
        raise DocumentRefused("redirect_uris must list 1 to 20 URIs")
    reader = TableReader(client_id, "", doc)
    try:
        return tuple(check_redirect_uri(reader, "redirect_uris", uri) for uri in uris)
    except ConfigError:
        raise DocumentRefused("a redirect URI of the document is not acceptable") from None


def _scope(doc: dict[str, Any]) -> set[str] | None:
    scope = doc.get("scope")
    if scope is None:
        return None
    if not isinstance(scope, str):
        raise DocumentRefused("scope must be a string")
    return set(scope.split())


def _name(doc: dict[str, Any], host: str) -> str:
    """Return the self-asserted name (shown beside the host, never instead of it)."""
    name = doc.get("client_name")
    if isinstance(name, str) and 0 < len(name) <= 100 and name.isprintable():
        return name
    return host
