"""The client's address, for brute-force counters and logs, trusting only configured proxies."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

import falcon

from jwtauth.config.settings import Network

IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(value: str) -> IP | None:
    """Return the IP of `a.b.c.d`, `a.b.c.d:port`, `v6`, `[v6]` or `[v6]:port`; None if not an IP.

    Proxies write hops with a port (Azure Application Gateway: `IP:port`; RFC 7239 §6: `[v6]:port`),
    which must not give one client a fresh counter per port. An IPv4-mapped IPv6 address (a peer
    on a socket bound to `::`) is its IPv4 address, so IPv4 proxy lists and counters match it.
    """
    text = value.strip()
    if text.startswith("["):
        text, _, _ = text[1:].partition("]")
    elif text.count(":") == 1:
        text, _, _ = text.partition(":")  # IPv4 with a port; a bare IPv6 has two colons or more
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


# The peers of one worker are few (its proxies, or its clients' addresses); parsing one with
# ipaddress costs microseconds on every request. Bounded: an address is client-chosen text
# once X-Forwarded-For is trusted.
@functools.lru_cache(maxsize=4096)
def _canonical(value: str) -> str:
    ip = parse_address(value)
    return str(ip) if ip is not None else value.strip()[:64]


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    ip = parse_address(address)
    return ip is not None and any(ip in net for net in networks)


def client_address(remote_addr: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """Return the address of the client that reached the first trusted proxy, without a port.

    X-Forwarded-For is written by the client too, so only entries appended by proxies we trust
    count: walk it from the right, skipping trusted hops, and stop at the first untrusted one.
    Without trusted proxies the header is ignored: a client could otherwise pick a fresh
    address per guess and never meet the per-address limit (RFC 6749 §4.3.2).
    """
    if not trusted or not forwarded_for or not _trusted(remote_addr, trusted):
        return _canonical(remote_addr)
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return _canonical(hop)
    return _canonical(hops[0]) if hops else _canonical(remote_addr)


class ClientAddress:
    """Falcon middleware: put the client's address on `req.context.client_addr`."""

    def __init__(self, trusted: Sequence[Network]) -> None:
        self.trusted = tuple(trusted)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.client_addr = client_address(
            req.remote_addr or "", req.get_header("X-Forwarded-For"), self.trusted
        )
