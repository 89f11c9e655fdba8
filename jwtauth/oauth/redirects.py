"""Match a sent redirect URI against the registered ones: exact, except the loopback port.

RFC 9700 §4.1.3 wants exact string matching; RFC 8252 §7.3 makes one exception: a native app
listening on a loopback IP literal gets an ephemeral port from the OS, so a registered
`http://127.0.0.1/cb` or `http://[::1]/cb` matches that URI with any port. Everything else in
the URI (scheme, host literal, path, query) still compares as a string. Nothing is parsed with
a general URL parser here: the sent URI must be exactly `http://` + the registered host literal
+ an optional decimal port + the registered rest, so no parser differential can widen the match.
`localhost` (RFC 8252 §8.3: NOT RECOMMENDED, it can resolve elsewhere) joins the loopback hosts
only for a client that opts in with `allow_localhost`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

LOOPBACK_LITERALS: Final = ("127.0.0.1", "[::1]")
LOCALHOST: Final = "localhost"
_PREFIX: Final = "http://"
# After the host literal: nothing, or ':' and a port of 1-5 digits without a leading zero.
_PORT: Final = re.compile(r"(?::([1-9][0-9]{0,4}))?")


def _split_loopback(uri: str, hosts: Sequence[str]) -> tuple[str, str] | None:
    """Return (host, rest after the port) of an `http://<loopback host>[:port]…` URI, else None."""
    if not uri.startswith(_PREFIX):  # the scheme compares exactly: no `HTTP://`
        return None
    after = uri[len(_PREFIX) :]
    for host in hosts:
        if not after.startswith(host):
            continue
        port = _PORT.match(after, len(host))
        if port is None:  # cannot happen (the pattern matches empty), kept for the type checker
            return None
        if port.group(1) is not None and int(port.group(1)) > 65535:
            return None
        rest = after[port.end() :]
        # The authority ends here (RFC 3986 §3.2): `127.0.0.1.evil.example` or `127.0.0.1@x`
        # leave something else before the path and are not loopback URIs at all.
        if rest == "" or rest[0] in "/?":
            return host, rest
    return None


def loopback_hosts(allow_localhost: bool) -> tuple[str, ...]:
    """Return the host spellings whose redirect URIs match on any port."""
    return (*LOOPBACK_LITERALS, LOCALHOST) if allow_localhost else LOOPBACK_LITERALS


def matches(registered: str, sent: str, *, allow_localhost: bool = False) -> bool:
    """Tell whether `sent` is `registered`, or the same loopback URI on another port (RFC 8252 §7.3)."""
    if same_redirect_uri(sent, registered):  # RFC 9700 §4.1.3: exact string matching
        return True
    hosts = loopback_hosts(allow_localhost)
    ours = _split_loopback(registered, hosts)
    if ours is None:
        return False
    theirs = _split_loopback(sent, hosts)
    if theirs is None:
        return False
    # Same host literal and byte-identical path and query; only the port is free.
    return theirs == ours


def find(registered: Sequence[str], sent: str, *, allow_localhost: bool = False) -> str | None:
    """Return `sent` when it matches one of the registered URIs, else None."""
    if any(matches(uri, sent, allow_localhost=allow_localhost) for uri in registered):
        return sent
    return None


def same_as_authorization(expected: str, sent: str) -> bool:
    """Tell whether the token request's redirect_uri is the authorization request's (RFC 6749 §4.1.3).

    Exact, port included: the loopback rule chose one URI at the authorization endpoint, and the
    code was delivered there; the token request must name that very URI.
    """
    return same_redirect_uri(sent, expected)


def authorization_uris_matching(sent: str) -> tuple[str, ...]:
    """Return every authorization request redirect_uri that `same_as_authorization` matches to `sent`.

    They are `sent` and its forms with and without the `/` of an empty http(s) path: the only
    values `_slash_path` maps to the same URI. The take script of a code compares with these.
    """
    slashed = _slash_path(sent)
    scheme, _, rest = slashed.partition("://")
    cut = rest.find("/")
    bare = f"{scheme}://{rest[:cut]}{rest[cut + 1:]}" if cut >= 0 else slashed
    return tuple(uri for uri in dict.fromkeys((sent, slashed, bare)) if same_as_authorization(uri, sent))


def same_redirect_uri(sent: str, registered: str) -> bool:
    """Tell whether `sent` is the registered redirect URI: string-equal, or equal once an empty
    http(s) path is written `/` (RFC 3986 §6.2.3; RFC 9110 §4.2.3). Nothing else is normalised.

    WHATWG URL parsers (browsers, Node, openid-client) always print `https://host/`, so a client
    registered as `https://host` would otherwise fail with the URL its own library builds.
    """
    if sent == registered:
        return True
    return _slash_path(sent) == _slash_path(registered)


def _slash_path(uri: str) -> str:
    """Return `uri` with an empty http(s) path written as `/`; any other URI unchanged."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in ("http", "https"):
        return uri
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    if rest[cut:cut + 1] == "/":
        return uri
    return f"{scheme}://{rest[:cut]}/{rest[cut:]}"
