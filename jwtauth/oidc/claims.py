"""A user's standard claims (OpenID Connect Core §5.1): their types, and which scope releases them.

Claims live in the user's `[[users]]` table beside `username`, `password_hash` and `sub`:

    [[users]]
    username = "testuser@example.com"
    sub = "8d0b6a3e-…"
    name = "Test User"
    email = "testuser@example.com"
    email_verified = true
    address = { street_address = "1 Main St", locality = "Springfield", country = "US" }
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from jwtauth.config.reader import TableReader

# Core §5.1: every standard claim but `sub` (which is the user's own key) and its JSON type.
STRING_CLAIMS = (
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
)
BOOLEAN_CLAIMS = ("email_verified", "phone_number_verified")
NUMBER_CLAIMS = ("updated_at",)
# Core §5.1.1: the address claim is a JSON object of these strings.
ADDRESS_FIELDS = ("formatted", "street_address", "locality", "region", "postal_code", "country")
STANDARD_CLAIMS = (*STRING_CLAIMS, *BOOLEAN_CLAIMS, *NUMBER_CLAIMS, "address")

# Core §5.4: the claims each scope value requests.
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": (
        "name",
        "family_name",
        "given_name",
        "middle_name",
        "nickname",
        "preferred_username",
        "profile",
        "picture",
        "website",
        "gender",
        "birthdate",
        "zoneinfo",
        "locale",
        "updated_at",
    ),
    "email": ("email", "email_verified"),
    "address": ("address",),
    "phone": ("phone_number", "phone_number_verified"),
}
# Core §2: sub is at most 255 ASCII characters; printable ones, so it can be typed and logged.
_SUBJECT = re.compile(r"[\x21-\x7e]{1,255}")
MAX_CLAIM = 1024


class ClaimError(ValueError):
    """A claim's value has the wrong type or shape; the message says which and why."""


def valid_subject(sub: str) -> bool:
    """Tell whether `sub` is a usable subject identifier (Core §2: ≤ 255 ASCII characters)."""
    return _SUBJECT.fullmatch(sub) is not None


def check_claim(name: str, value: Any) -> Any:
    """Return `value` if it has the type Core §5.1 gives the claim `name`, else raise ClaimError."""
    if name in STRING_CLAIMS:
        if not isinstance(value, str) or not 0 < len(value) <= MAX_CLAIM:
            raise ClaimError(f"{name} must be a string of 1-{MAX_CLAIM} characters")
    elif name in BOOLEAN_CLAIMS:
        if not isinstance(value, bool):
            raise ClaimError(f"{name} must be true or false")
    elif name in NUMBER_CLAIMS:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ClaimError(f"{name} must be seconds since the epoch")
    elif name == "address":
        if not isinstance(value, Mapping) or not value:
            raise ClaimError("address must be a table of " + ", ".join(ADDRESS_FIELDS))
        for part, text in value.items():
            if part not in ADDRESS_FIELDS or not isinstance(text, str) or len(text) > MAX_CLAIM:
                raise ClaimError(f"address.{part}: not a string field of " + ", ".join(ADDRESS_FIELDS))
        return dict(value)
    else:
        raise ClaimError(f"{name} is not a standard claim ({', '.join(STANDARD_CLAIMS)})")
    return value


def parse_user_claims(reader: TableReader) -> dict[str, Any]:
    """Return the standard claims set in a `[[users]]` table, each checked."""
    claims: dict[str, Any] = {}
    for name in STANDARD_CLAIMS:
        if name in reader.table:
            try:
                claims[name] = check_claim(name, reader.table[name])
            except ClaimError as exc:
                raise reader.error(name, str(exc)) from None
    return claims


def parse_claim_option(text: str) -> tuple[str, Any]:
    """Return (name, value) of a CLI `--claim KEY=VALUE`; `address.FIELD=…` sets one address part.

    Booleans are `true`/`false`, `updated_at` an integer; every other claim is a string.
    """
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise ClaimError(f"--claim {text!r}: expected KEY=VALUE")
    if name.startswith("address."):
        return "address", {name.removeprefix("address."): raw}
    value: Any = raw
    if name in BOOLEAN_CLAIMS:
        if raw not in ("true", "false"):
            raise ClaimError(f"--claim {name}: must be true or false")
        value = raw == "true"
    elif name in NUMBER_CLAIMS:
        if not raw.isdigit():
            raise ClaimError(f"--claim {name}: must be seconds since the epoch")
        value = int(raw)
    return name, check_claim(name, value)


def released(claims: Mapping[str, Any], scope: Iterable[str]) -> dict[str, Any]:
    """Return the claims `scope` releases (Core §5.4); a claim the user lacks is left out."""
    names = [name for s in scope for name in SCOPE_CLAIMS.get(s, ())]
    return {name: claims[name] for name in names if name in claims}


def supported(scopes: Iterable[str]) -> list[str]:
    """Return the claims the scopes can release, plus the protocol claims, for discovery."""
    names = {name for s in scopes for name in SCOPE_CLAIMS.get(s, ())}
    protocol = ("sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "c_hash", "sid")
    return [*protocol, *sorted(names)]
