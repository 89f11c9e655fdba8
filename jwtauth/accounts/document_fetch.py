"""Fetch a client ID metadata document without becoming a proxy into the private network.

The URL comes from whoever opens the authorize page, so every fetch is an attacker-chosen
request from inside our network (draft-ietf-oauth-client-id-metadata-document §6.5 and
RFC 9700 §4.14's SSRF advice). The rules, in order:
- https only (http only for a loopback IP literal when the operator allows it for development);
- resolve the name once, and refuse unless EVERY address is public: private, loopback,
  link-local, shared, multicast, reserved and unspecified addresses are refused, IPv4-mapped
  IPv6 included;
- connect to the address that was checked (TLS still verifies the certificate for the name),
  so a second DNS answer cannot move the request elsewhere (DNS rebinding);
- no redirects, a short connect and total deadline, a small byte cap, 200 with JSON only.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

MAX_BYTES: Final = 5 * 1024  # the draft suggests 5 KB: a metadata document is small
CONNECT_TIMEOUT: Final = 2.0
TOTAL_TIMEOUT: Final = 4.0

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# Ranges the standard library may call global (depending on its version) that still lead inside:
# IETF protocol assignments, NAT64 and 6to4/Teredo (which embed any IPv4 address, private ones too).
_NOT_PUBLIC: Final = tuple(
    ipaddress.ip_network(n)
    for n in (
        "192.0.0.0/24",
        "198.18.0.0/15",
        "100.64.0.0/10",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "2002::/16",
        "2001::/32",
    )
)
Resolver = Callable[[str, int], Sequence[str]]


class FetchRefused(Exception):
    """The document could not be fetched; the message is safe to show and to log."""


@dataclass(frozen=True)
class Fetched:
    """A fetched document: its bytes and the response's Cache-Control."""

    body: bytes
    cache_control: str


def system_resolver(host: str, port: int) -> list[str]:
    """Return every address `host` resolves to (A and AAAA), as strings."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def public_address(address: Address) -> bool:
    """Tell whether an address is on the public Internet (the only place documents may live)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    refused = (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )
    return address.is_global and not refused and not any(address in net for net in _NOT_PUBLIC)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection to a checked address that still verifies the certificate for the name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), timeout=self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


class _PinnedHTTP(http.client.HTTPConnection):
    """A plain HTTP connection to a checked address (development loopback only)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), timeout=self.timeout)


class DocumentFetcher:
    """Fetch documents by the rules above; `resolver` and `allow_address` are the test seams."""

    def __init__(
        self,
        *,
        allow_insecure_loopback: bool = False,
        resolver: Resolver = system_resolver,
        allow_address: Callable[[Address], bool] = public_address,
        max_bytes: int = MAX_BYTES,
        total_timeout: float = TOTAL_TIMEOUT,
        media_types: tuple[str, ...] = ("application/json",),
    ) -> None:
        self._insecure_loopback = allow_insecure_loopback
        self._media_types = media_types
        self._resolve, self._allow = resolver, allow_address
        self._max_bytes, self._total = max_bytes, total_timeout

    def fetch(self, url: str) -> Fetched:
        """Return the document at `url`, or raise FetchRefused."""
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        loopback = self._dev_loopback(parts.scheme, host)
        if parts.scheme != "https" and not loopback:
            raise FetchRefused("the document must be served over https")
        address = self._checked_address(host, port, loopback)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        kind = _PinnedHTTP if parts.scheme == "http" else _PinnedHTTPS
        connection = kind(host, port, address, CONNECT_TIMEOUT)
        try:
            return self._get(connection, target)
        except (OSError, http.client.HTTPException, ssl.SSLError):
            raise FetchRefused("the document could not be fetched") from None
        finally:
            connection.close()

    def _dev_loopback(self, scheme: str, host: str) -> bool:
        """Tell whether this is an allowed development document on a loopback IP literal."""
        if not self._insecure_loopback or scheme not in ("http", "https"):
            return False
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False  # a name, even `localhost`, goes through the public-address rule

    def _checked_address(self, host: str, port: int, loopback: bool) -> str:
        """Resolve once; return an address to connect to if every answer is acceptable."""
        if loopback:
            return host
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            raise FetchRefused("the document's host must be a name, not an IP address")
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in self._resolve(host, port)]
        except (OSError, UnicodeError, ValueError):
            raise FetchRefused("the document's host does not resolve") from None
        if not addresses:
            raise FetchRefused("the document's host does not resolve")
        if not all(self._allow(a) for a in addresses):
            # One private answer among public ones is refused too: we would not know which one
            # a later connection (ours or the rebinding attacker's) ends up using.
            raise FetchRefused("the document's host resolves to a non-public address")
        return str(addresses[0])

    def _get(self, connection: http.client.HTTPConnection, target: str) -> Fetched:
        """Send the GET and read a capped JSON body within the total deadline."""
        deadline = time.monotonic() + self._total
        connection.request("GET", target, headers={"Accept": "application/json", "User-Agent": "jwtauth"})
        response = connection.getresponse()
        if response.status != 200:
            # 3xx included: a redirect could lead anywhere the rules above were meant to keep out.
            raise FetchRefused(f"the document answered HTTP {response.status}")
        media_type = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if media_type not in self._media_types:
            raise FetchRefused(f"the document must be served as {' or '.join(self._media_types)}")
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > self._max_bytes:
            raise FetchRefused(f"the document is larger than {self._max_bytes} bytes")
        body = b""
        while len(body) <= self._max_bytes:
            left = deadline - time.monotonic()
            if left <= 0:
                raise FetchRefused("the document took too long to arrive")
            if connection.sock is not None:  # a trickling server cannot stretch the deadline
                connection.sock.settimeout(left)
            chunk = response.read1(1024)
            if not chunk:
                break
            body += chunk
        if len(body) > self._max_bytes:
            raise FetchRefused(f"the document is larger than {self._max_bytes} bytes")
        return Fetched(body, response.getheader("Cache-Control") or "")
