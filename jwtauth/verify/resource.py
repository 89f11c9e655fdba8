"""Describe a protected resource to OAuth clients: RFC 9728 protected-resource metadata.

A client that meets a 401 follows the challenge's ``resource_metadata`` URL, reads which
authorization server issues tokens for this resource and which identifier to ask for
(RFC 8707 ``resource``), and signs in there. ``resource`` must be exactly the ``aud`` our
tokens carry, so the identifier the client asks for is the audience the verifier demands.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

__all__ = ["WELL_KNOWN", "ProtectedResource"]

# RFC 9728 §3: the registered well-known URI suffix.
WELL_KNOWN: Final = "/.well-known/oauth-protected-resource"


def _check_url(name: str, url: str) -> None:
    """Raise ValueError unless ``url`` is an absolute http(s) URL without fragment (RFC 9728 §1.2)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError(f"{name} {url!r} is not a URL") from None
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment or "#" in url:
        raise ValueError(f"{name} {url!r} must be an http(s) URL without fragment")
    if any(c in url for c in ' "\\') or not url.isascii() or not url.isprintable():
        raise ValueError(f"{name} {url!r} must be printable ASCII without spaces or quotes")


@dataclass(frozen=True)
class ProtectedResource:
    """One resource server's RFC 9728 metadata; ``resource`` is the audience of its tokens."""

    resource: str
    authorization_servers: tuple[str, ...]
    scopes_supported: tuple[str, ...] = ()
    bearer_methods_supported: tuple[str, ...] = ("header",)
    resource_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        """Refuse metadata a client could not use."""
        _check_url("resource", self.resource)
        if urlsplit(self.resource).query:
            # RFC 9728 §1.2: the identifier SHOULD NOT have a query; we keep the path mapping simple.
            raise ValueError(f"resource {self.resource!r} must not have a query")
        if not self.authorization_servers:
            raise ValueError("name at least one authorization server (its issuer URL)")
        for issuer in self.authorization_servers:
            _check_url("authorization server", issuer)

    @classmethod
    def of(
        cls, resource: str, issuers: str | Iterable[str], scopes: Iterable[str] = (), **more: Any
    ) -> ProtectedResource:
        """Return the metadata of ``resource`` whose tokens come from ``issuers``."""
        servers = (issuers,) if isinstance(issuers, str) else tuple(issuers)
        return cls(resource, servers, tuple(scopes), **more)

    @property
    def path(self) -> str:
        """Return where the document is served: the well-known suffix before the resource's path.

        RFC 9728 §3.1: a terminating slash after the host is dropped, then the well-known path is
        inserted between the host and the path: `https://a.example/mcp` ->
        `/.well-known/oauth-protected-resource/mcp`.
        """
        tail = urlsplit(self.resource).path
        return WELL_KNOWN + ("" if tail in ("", "/") else tail)

    @property
    def url(self) -> str:
        """Return the absolute metadata URL, the ``resource_metadata`` of challenges (§5.1)."""
        parts = urlsplit(self.resource)
        return f"{parts.scheme}://{parts.netloc}{self.path}"

    def document(self) -> dict[str, Any]:
        """Return the metadata document (RFC 9728 §2)."""
        doc: dict[str, Any] = {
            "resource": self.resource,
            "authorization_servers": list(self.authorization_servers),
            "bearer_methods_supported": list(self.bearer_methods_supported),
        }
        if self.scopes_supported:
            doc["scopes_supported"] = list(self.scopes_supported)
        if self.resource_name:
            doc["resource_name"] = self.resource_name
        return {**doc, **self.extra}

    def body(self, **more: Any) -> bytes:
        """Return the document, with ``more`` members (e.g. DPoP's), as the JSON bytes served."""
        return json.dumps({**self.document(), **more}).encode()
