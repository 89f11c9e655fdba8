"""[client_id_metadata]: which URL client IDs (client ID metadata documents) the server accepts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from jwtauth.config.defaults import DEFAULTS
from jwtauth.config.reader import TableReader

# A host pattern: `*`, `*.example.com` (any subdomain) or a host name, lower case.
_LABEL: Final = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PATTERN: Final = re.compile(rf"\*|(?:\*\.)?{_LABEL}(?:\.{_LABEL})*")
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_CHARS: Final = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "\\"}


@dataclass(frozen=True)
class ClientMetadataSettings:
    """Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document); off by default."""

    enabled: bool = DEFAULTS["client_id_metadata.enabled"]
    allowed_hosts: tuple[str, ...] = DEFAULTS["client_id_metadata.allowed_hosts"]
    scopes: tuple[str, ...] = DEFAULTS["client_id_metadata.scopes"]
    audiences: tuple[str, ...] = DEFAULTS["client_id_metadata.audiences"]
    # Development and tests only: http://127.0.0.1:<port>/… and http://[::1]:<port>/… documents.
    allow_insecure_loopback: bool = DEFAULTS["client_id_metadata.allow_insecure_loopback"]

    def host_allowed(self, host: str) -> bool:
        """Tell whether a document on `host` (lower case) may be fetched."""
        for pattern in self.allowed_hosts:
            if pattern == "*" or pattern == host:
                return True
            if pattern.startswith("*.") and host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        return False


def parse_client_metadata(table: TableReader, issuer: str) -> ClientMetadataSettings:
    """Validate the [client_id_metadata] table."""
    enabled = table.get("enabled", bool)
    hosts = table.strings("allowed_hosts")
    for host in hosts:
        if not _PATTERN.fullmatch(host):
            raise table.error("allowed_hosts", f'{host!r}: use a lower-case host, *.domain or "*"')
    if enabled and not hosts:
        raise table.error("allowed_hosts", 'name the hosts whose documents to accept (or ["*"] for any)')
    scopes = table.strings("scopes")
    for scope in scopes:
        if not scope or not set(scope) <= _SCOPE_CHARS:
            raise table.error("scopes", f"{scope!r} is not a valid scope token (RFC 6749 §3.3)")
    insecure = table.get("allow_insecure_loopback", bool)
    if insecure and issuer.startswith("https://"):
        # A production server (https issuer) must never fetch from its own machine.
        raise table.error("allow_insecure_loopback", "is for development only; refused with an https issuer")
    return ClientMetadataSettings(enabled, hosts, scopes, table.strings("audiences"), insecure)
