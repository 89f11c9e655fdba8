"""Response types and response modes of the authorization endpoint.

OAuth 2.0 Multiple Response Type Encoding Practices §3, §5 and OpenID Connect Core §3.2, §3.3:
`code` (query by default), `token` and `id_token` (implicit) and their combinations with `code`
(hybrid), which travel in the fragment by default. The order of the words does not matter.
`query` is never allowed for a response carrying a token (Multiple Response Types §2.1).
OAuth 2.0 Form Post Response Mode: `form_post` for any of them.
"""

from __future__ import annotations

from collections.abc import Mapping

from jwtauth.errors import InvalidRequest

CODE, TOKEN, ID_TOKEN = "code", "token", "id_token"
# The response types, and the grants a client needs for each: a code needs authorization_code,
# anything issued at the authorization endpoint itself needs implicit.
RESPONSE_TYPES: dict[frozenset[str], frozenset[str]] = {
    frozenset(words): frozenset(
        ({"authorization_code"} if CODE in words else set())
        | ({"implicit"} if {TOKEN, ID_TOKEN} & words else set())
    )
    for words in (
        {CODE},
        {TOKEN},
        {ID_TOKEN},
        {ID_TOKEN, TOKEN},
        {CODE, ID_TOKEN},
        {CODE, TOKEN},
        {CODE, ID_TOKEN, TOKEN},
    )
}
QUERY, FRAGMENT, FORM_POST = "query", "fragment", "form_post"
MODES = (QUERY, FRAGMENT, FORM_POST)


def response_words(raw: str | None) -> frozenset[str] | None:
    """Return the words of a known response_type, else None."""
    if raw is None:
        return None
    listed = raw.split(" ")
    words = frozenset(listed)
    return words if words in RESPONSE_TYPES and len(words) == len(listed) else None


def names() -> list[str]:
    """Return every supported response_type for discovery, in a stable order."""
    return sorted((" ".join(sorted(w, key=(CODE, ID_TOKEN, TOKEN).index)) for w in RESPONSE_TYPES), key=len)


def mode_of(params: Mapping[str, str]) -> str:
    """Return how this request's responses (errors included) travel back to the client.

    A response_mode the request may not use falls back to the response type's default here,
    so that `check_mode` can send its error back the safe way.
    """
    # Multiple Response Types §5: a response carrying a token defaults to the fragment.
    default = FRAGMENT if {TOKEN, ID_TOKEN} & set((params.get("response_type") or "").split(" ")) else QUERY
    asked = params.get("response_mode")
    if asked in (FORM_POST, FRAGMENT) or (asked == QUERY and default == QUERY):
        return str(asked)
    return default


def check_mode(params: Mapping[str, str]) -> None:
    """Raise InvalidRequest for an unknown response_mode or query with tokens (§2.1)."""
    asked = params.get("response_mode")
    if asked is None:
        return
    if asked not in MODES:
        raise InvalidRequest(f"response_mode must be one of {', '.join(MODES)}")
    if asked != mode_of(params):
        raise InvalidRequest("response_mode=query cannot carry tokens; use fragment or form_post")
