"""The client's address, for brute-force counters and logs, trusting only configured proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import falcon

from jwtauth.config.settings import Network


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(remote_addr: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """Return the address of the client that reached the first trusted proxy.

    X-Forwarded-For is written by the client too, so only entries appended by proxies we trust
    count: walk it from the right, skipping trusted hops, and stop at the first untrusted one.
    Without trusted proxies the header is ignored: a client could otherwise pick a fresh
    address per guess and never meet the per-address limit (RFC 6749 §4.3.2).
    """
    if not trusted or not forwarded_for or not _trusted(remote_addr, trusted):
        return remote_addr
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop[:64]
    return hops[0][:64] if hops else remote_addr


class ClientAddress:
    """Falcon middleware: put the client's address on `req.context.client_addr`."""

    def __init__(self, trusted: Sequence[Network]) -> None:
        self.trusted = tuple(trusted)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        remote = req.remote_addr or ""
        if self.trusted:
            remote = client_address(remote, req.get_header("X-Forwarded-For"), self.trusted)
        req.context.client_addr = remote
