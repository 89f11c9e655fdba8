"""Verify jwtauth access tokens offline, for resource servers.

A resource server needs only this module, PyJWT, cryptography and (for the
middleware) Falcon: no server configuration, no Redis.

    verifier = Verifier(issuer="https://auth.example.com", audience="https://api.example.com")
    claims = verifier.verify(token)          # or raises InvalidToken

Errors: every rejection is an ``InvalidToken`` whose ``reason`` is a short public
string. When the signing keys cannot be fetched at all, the subclass
``VerifierUnavailable`` is raised instead. It subclasses ``InvalidToken`` so that a
caller who catches only ``InvalidToken`` still fails closed (the token is refused);
a caller who wants to tell "bad token" (401) from "cannot check right now" (503)
catches ``VerifierUnavailable`` first, as ``BearerAuth`` does.

Audience: ``audience`` is a required keyword. Skipping the audience check needs two
explicit choices, ``audience=None`` *and* ``verify_audience=False``; anything else
that would leave the audience unchecked is a ``ValueError`` at construction. Even
then the token must carry an ``aud`` claim (RFC 9068 §2.2).
"""

from __future__ import annotations

import base64
import binascii
import inspect
import ipaddress
import json
import logging
import math
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from email.message import Message
from typing import IO, Any, Final

import falcon
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "ALLOWED_ALGORITHMS",
    "BearerAuth",
    "Clock",
    "Fetch",
    "InvalidToken",
    "NotModified",
    "RequireBearer",
    "Verifier",
    "VerifierUnavailable",
    "token_scopes",
    "urllib_fetch",
]

log = logging.getLogger("jwtauth.verify")

Fetch = Callable[..., tuple[bytes, Mapping[str, str]]]
"""Fetch a URL and return its body and response headers; raise on any failure.

Called as ``fetch(url)``. A fetch that also takes a ``headers`` keyword gets the request
headers of a JWK Set refresh (``If-None-Match``, ``Cache-Control: no-cache``) and raises
``NotModified`` for a 304; ``urllib_fetch`` does both.
"""
Clock = Callable[[], float]
"""Return the current time in seconds since the Unix epoch."""

# RFC 8725 §3.1: an explicit allow-list; asymmetric only, so a public key can never
# be misused as an HMAC secret.
ALLOWED_ALGORITHMS: Final = frozenset({"ES256", "RS256", "PS256", "EdDSA"})
# What each algorithm demands of the JWK that carries it: (kty, crv).
_KEY_SHAPES: Final[Mapping[str, tuple[str, str | None]]] = {
    "ES256": ("EC", "P-256"),
    "RS256": ("RSA", None),
    "PS256": ("RSA", None),
    "EdDSA": ("OKP", "Ed25519"),
}
# RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2: members only a private or symmetric key has.
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# RFC 7515 §4.1.2-4.1.6 and RFC 8725 §3.10: key material or key URLs named by the
# token itself are attacker-chosen; never fetched, never used, and refused outright.
_FORBIDDEN_HEADERS: Final = frozenset({"jku", "x5u", "jwk", "x5c"})
# RFC 9068 §4: typ must be at+jwt; RFC 7515 §4.1.9 allows the full media type.
_ACCESS_TOKEN_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
# RFC 9068 §2.2: claims every access token carries.
_REQUIRED_CLAIMS: Final = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id")
_STRING_CLAIMS: Final = ("iss", "sub", "jti", "client_id")
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
_MAX_KID_LENGTH: Final = 256
_MIN_RSA_BITS: Final = 2048  # RFC 7518 §3.3
_LOOPBACK_NAMES: Final = frozenset({"localhost"})


class InvalidToken(Exception):
    """Signal that a token was refused; ``reason`` is safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class VerifierUnavailable(InvalidToken):
    """Signal that no signing keys could be fetched, so no token can be checked now."""


class NotModified(Exception):
    """Raised by a fetch given ``If-None-Match`` when the server answers 304 Not Modified."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__("304 Not Modified")
        self.headers = headers


class _FetchRefused(ValueError):
    """Signal that the default fetcher refused a URL or a response."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects, which could move a https fetch onto plain http."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        """Return no follow-up request, so urllib raises HTTPError for the 3xx."""
        return None


def urllib_fetch(
    url: str,
    *,
    timeout: float = 5.0,
    max_bytes: int = 512 * 1024,
    headers: Mapping[str, str] | None = None,
) -> tuple[bytes, Mapping[str, str]]:
    """Fetch ``url`` with urllib: https (http only on loopback), no redirects, capped size.

    ``headers`` are added to the request; a 304 answer raises ``NotModified``.
    """
    parts = urllib.parse.urlsplit(url)
    # Whoever controls the JWKS can mint tokens: plain http is allowed only where no
    # network path exists to tamper with it (RFC 8414 §2 requires https issuers).
    if parts.scheme != "https" and not (parts.scheme == "http" and _is_loopback(parts.hostname)):
        raise _FetchRefused(f"refusing to fetch {parts.scheme}://{parts.hostname}")
    opener = urllib.request.build_opener(_NoRedirect)
    # The scheme was checked above, so S310 (file:, ftp:) does not apply.
    sent = {"Accept": "application/json", **(headers or {})}
    request = urllib.request.Request(url, headers=sent)  # noqa: S310
    try:
        response = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()  # an error response still holds a socket
        if exc.code == 304:  # RFC 9110 §15.4.5: what we hold is still current
            raise NotModified(dict(exc.headers.items())) from None
        raise
    with response:
        body: bytes = response.read(max_bytes + 1)
        received = dict(response.headers.items())
    if len(body) > max_bytes:
        raise _FetchRefused(f"response from {url} exceeds {max_bytes} bytes")
    return body, received


def _is_loopback(host: str | None) -> bool:
    """Tell whether ``host`` names this machine."""
    if host is None:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """Return the scopes granted by verified claims (RFC 9068 §2.2.3: space-delimited)."""
    scope = claims.get("scope")
    return frozenset(scope.split()) if isinstance(scope, str) else frozenset()


@dataclass(frozen=True)
class _KeySet:
    """Hold one fetched JWK Set: usable keys by kid, and when it goes stale."""

    keys: Mapping[str, jwt.PyJWK]
    expires_at: float
    etag: str | None = None


class Verifier:
    """Verify RFC 9068 JWT access tokens against an issuer's published JWK Set.

    Keys come from ``jwks_uri`` or, when it is None, from the ``jwks_uri`` of the
    issuer's RFC 8414 metadata (falling back to OpenID discovery). Nothing is fetched
    until the first ``verify``. The JWK Set is cached for the response's
    ``Cache-Control: max-age`` (``default_max_age`` without one), clamped to
    [``min_max_age``, ``max_max_age``]. A token naming an unknown ``kid`` refreshes
    the set, but no fetch of any kind follows another within ``refetch_interval``.
    When a refresh fails, the last set keeps serving for up to ``stale_if_error``
    seconds past its expiry.

    ``fetch`` and ``clock`` are the seams for tests: ``clock`` drives both claim
    times and cache ages. Safe to share between threads.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str | None,
        verify_audience: bool = True,
        jwks_uri: str | None = None,
        fetch: Fetch = urllib_fetch,
        clock: Clock = time.time,
        leeway: float = 30.0,
        max_token_bytes: int = 8 * 1024,
        refetch_interval: float = 10.0,
        default_max_age: float = 300.0,
        min_max_age: float = 60.0,
        max_max_age: float = 24 * 3600.0,
        stale_if_error: float = 3600.0,
    ) -> None:
        """Configure the verifier; fetch nothing yet."""
        if not issuer:
            raise ValueError("issuer is required")
        if verify_audience and not audience:
            raise ValueError(
                "audience is required; to skip the audience check pass "
                "audience=None and verify_audience=False"
            )
        if not verify_audience and audience is not None:
            raise ValueError("audience was given but verify_audience=False would ignore it")
        if not 0 < refetch_interval <= min_max_age <= default_max_age <= max_max_age:
            raise ValueError(
                "need 0 < refetch_interval <= min_max_age <= default_max_age <= max_max_age"
            )
        if leeway < 0 or stale_if_error < 0 or max_token_bytes <= 0:
            raise ValueError("need leeway >= 0, stale_if_error >= 0 and max_token_bytes > 0")
        self._issuer = issuer
        self._audience = audience
        self._jwks_uri = jwks_uri
        self._fetch = fetch
        self._clock = clock
        self._leeway = leeway
        self._max_token_bytes = max_token_bytes
        self._refetch_interval = refetch_interval
        self._default_max_age = default_max_age
        self._min_max_age = min_max_age
        self._max_max_age = max_max_age
        self._stale_if_error = stale_if_error
        self._fetch_takes_headers = _takes_headers(fetch)
        self._jws = jwt.PyJWS(options={"enforce_minimum_key_length": True})
        self._lock = threading.Lock()
        self._keys: _KeySet | None = None
        self._last_attempt: float | None = None
        self._failing = False

    @property
    def refetch_interval(self) -> float:
        """Return the shortest time between two JWK Set fetches, in seconds."""
        return self._refetch_interval

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of ``token`` if it is a valid access token; raise InvalidToken."""
        header = self._checked_header(token)
        key = self._key_for(header["kid"])
        # RFC 8725 §3.1: the key pins the algorithm; the header only has to agree.
        if header["alg"] != key.algorithm_name:
            raise InvalidToken("algorithm does not match key")
        try:
            decoded = self._jws.decode_complete(token, key=key, algorithms=[key.algorithm_name])
        except jwt.InvalidSignatureError:
            raise InvalidToken("bad signature") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise InvalidToken("malformed token") from None
        claims = _object_or_invalid(decoded["payload"])
        self._check_claims(claims)
        return claims

    def _checked_header(self, token: str) -> dict[str, Any]:
        """Parse and vet the JOSE header before any key lookup or signature work."""
        if not isinstance(token, str):
            raise InvalidToken("malformed token")
        # Cap the size first: everything after this costs CPU the sender chooses.
        if len(token) > self._max_token_bytes:
            raise InvalidToken("token too large")
        if not token.isascii() or token.count(".") != 2:
            raise InvalidToken("malformed token")
        header = _object_or_invalid(_b64url_decode(token.split(".", 1)[0]))
        alg = header.get("alg")
        if not isinstance(alg, str):
            raise InvalidToken("malformed token")
        # RFC 8725 §2.1: "none" in any spelling means unsigned.
        if alg.lower() == "none":
            raise InvalidToken("unsigned token")
        if alg not in ALLOWED_ALGORITHMS:
            raise InvalidToken("algorithm not allowed")
        typ = header.get("typ")
        # RFC 9068 §4 / RFC 8725 §3.11: explicit typing stops other JWTs posing as access tokens.
        if not isinstance(typ, str) or typ.lower() not in _ACCESS_TOKEN_TYPES:
            raise InvalidToken("not an access token")
        if _FORBIDDEN_HEADERS & header.keys():
            raise InvalidToken("token names its own key")
        # RFC 7515 §4.1.11: we implement no extensions, so any critical one is refused.
        if "crit" in header:
            raise InvalidToken("unsupported critical header")
        kid = header.get("kid")
        if not isinstance(kid, str) or not 0 < len(kid) <= _MAX_KID_LENGTH:
            raise InvalidToken("missing key id")
        return header

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        """Enforce RFC 9068 §4 on verified claims."""
        for name in _REQUIRED_CLAIMS:
            if name not in claims:
                raise InvalidToken(f"missing claim: {name}")
        for name in _STRING_CLAIMS:
            if not isinstance(claims[name], str):
                raise InvalidToken(f"invalid claim: {name}")
        # RFC 9068 §4: iss must match exactly; no normalisation of slashes or case.
        if claims["iss"] != self._issuer:
            raise InvalidToken("wrong issuer")
        audiences = _audiences(claims["aud"])
        if self._audience is not None and self._audience not in audiences:
            raise InvalidToken("wrong audience")
        if "scope" in claims and not isinstance(claims["scope"], str):
            raise InvalidToken("invalid claim: scope")
        now = self._clock()
        # RFC 7519 §4.1.4-4.1.6: the leeway absorbs clock skew between the two servers.
        if now >= _numeric_date(claims, "exp") + self._leeway:
            raise InvalidToken("token expired")
        if "nbf" in claims and now < _numeric_date(claims, "nbf") - self._leeway:
            raise InvalidToken("token not yet valid")
        if now < _numeric_date(claims, "iat") - self._leeway:
            raise InvalidToken("token issued in the future")

    def _key_for(self, kid: str) -> jwt.PyJWK:
        """Return the key for ``kid``, refreshing the JWK Set when allowed."""
        now = self._clock()
        keys = self._keys
        if keys is not None and now < keys.expires_at and kid in keys.keys:
            return keys.keys[kid]
        # One refresh at a time: threads that queued here find the new set ready.
        with self._lock:
            now = self._clock()
            keys = self._keys
            stale = keys is None or now >= keys.expires_at
            unknown = keys is not None and kid not in keys.keys
            if (stale or unknown) and self._may_fetch(now):
                self._refresh(now, unknown_kid=not stale)
                keys = self._keys
            # Past expiry the set serves only while refreshes fail, and only so long.
            grace = self._stale_if_error if self._failing else 0.0
            if keys is None or now >= keys.expires_at + grace:
                raise VerifierUnavailable("signing keys unavailable")
            key = keys.keys.get(kid)
            if key is not None:
                return key
            if self._failing:
                raise VerifierUnavailable("signing keys unavailable")
            raise InvalidToken("unknown key id")

    def _may_fetch(self, now: float) -> bool:
        """Tell whether enough time passed since the last fetch to try another."""
        # Bounds the fetch rate no matter how many random kids an attacker sends.
        return self._last_attempt is None or now - self._last_attempt >= self._refetch_interval

    def _refresh(self, now: float, *, unknown_kid: bool = False) -> None:
        """Fetch the JWK Set and install it; on failure keep the old one and remember."""
        self._last_attempt = now
        previous = self._keys
        try:
            jwks_uri = self._jwks_uri or self._discover()
            try:
                body, headers = self._fetch_jwks(jwks_uri, previous, unknown_kid=unknown_kid)
            except NotModified as exc:
                if previous is None:
                    raise ValueError("304 Not Modified, but no JWK Set is cached") from None
                # RFC 9111 §4.3.4: a 304 freshens what we hold, with the 304's own headers.
                self._failing = False
                expires_at = self._clock() + self._max_age(exc.headers)
                self._keys = _KeySet(previous.keys, expires_at, _etag(exc.headers) or previous.etag)
                return
            keys = _usable_keys(body)
        except Exception:  # any failure of the seam fails closed, as VerifierUnavailable
            log.warning("could not refresh the JWK Set for %s", self._issuer, exc_info=True)
            self._failing = True
            return
        self._failing = False
        self._keys = _KeySet(keys, self._clock() + self._max_age(headers), _etag(headers))

    def _fetch_jwks(
        self, url: str, previous: _KeySet | None, *, unknown_kid: bool
    ) -> tuple[bytes, Mapping[str, str]]:
        """Fetch the JWK Set, conditionally when the fetch can send request headers."""
        if not self._fetch_takes_headers:
            return self._fetch(url)
        request: dict[str, str] = {}
        if previous is not None and previous.etag:
            # RFC 9110 §13.1.2: revalidate what we hold; an unchanged set costs no body.
            request["If-None-Match"] = previous.etag
        if unknown_kid:
            # RFC 9111 §5.2.1.4: a kid we do not know means our copy may be old; make the
            # caches on the way ask the origin instead of serving that same old copy.
            request["Cache-Control"] = "no-cache"
        return self._fetch(url, headers=request)

    def _discover(self) -> str:
        """Find jwks_uri in the issuer's metadata and remember it."""
        errors: list[str] = []
        for url in _metadata_urls(self._issuer):
            try:
                body, _ = self._fetch(url)
                metadata = _json_object(body)
            except Exception as exc:  # try the next well-known location
                errors.append(f"{url}: {exc!r}")
                continue
            # RFC 8414 §3.3: metadata naming another issuer MUST NOT be used.
            if metadata.get("issuer") != self._issuer:
                raise ValueError(f"metadata at {url} names issuer {metadata.get('issuer')!r}")
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str) or not jwks_uri:
                raise ValueError(f"metadata at {url} has no jwks_uri")
            self._jwks_uri = jwks_uri
            return jwks_uri
        raise ValueError("no authorization server metadata: " + "; ".join(errors))

    def _max_age(self, headers: Mapping[str, str]) -> float:
        """Return how long to cache a JWK Set served with ``headers``."""
        lowered = {name.lower(): value for name, value in headers.items()}
        age = _cache_max_age(lowered.get("cache-control", ""))
        if age is None:
            age = self._default_max_age
        # RFC 9111 §4.2.3: a copy that sat in a cache (a CDN) for Age seconds has that much
        # less freshness left; without this a withdrawn key would outlive its max-age.
        age -= _age_seconds(lowered.get("age", ""))
        # Clamped: an issuer saying "no-cache" must not turn every request into a
        # fetch, and one saying "a year" must not pin a key we can never drop.
        return min(max(age, self._min_max_age), self._max_max_age)


def _metadata_urls(issuer: str) -> tuple[str, str]:
    """Return the RFC 8414 §3.1 and OpenID Discovery §4 metadata URLs of ``issuer``."""
    parts = urllib.parse.urlsplit(issuer)
    path = parts.path.rstrip("/")
    # RFC 8414 §3.1: the well-known segment goes between host and path.
    oauth = urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, "/.well-known/oauth-authorization-server" + path, "", "")
    )
    # OpenID Connect Discovery §4: the well-known segment is appended to the issuer.
    return oauth, issuer.rstrip("/") + "/.well-known/openid-configuration"


def _cache_max_age(cache_control: str) -> float | None:
    """Return the max-age of a Cache-Control value; 0 for no-store/no-cache; None if absent."""
    max_age: float | None = None
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-store", "no-cache"):
            return 0.0
        if name == "max-age":
            value = value.strip().strip('"')
            if value.isdigit():
                max_age = float(value)
    return max_age


def _takes_headers(fetch: Callable[..., Any]) -> bool:
    """Tell whether ``fetch`` accepts a ``headers`` keyword (the extended Fetch seam)."""
    try:
        parameters = inspect.signature(fetch).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: use the one-argument form
        return False
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return any(
        (p.name == "headers" and p.kind in named) or p.kind is inspect.Parameter.VAR_KEYWORD
        for p in parameters
    )


def _etag(headers: Mapping[str, str]) -> str | None:
    """Return the response's entity tag (RFC 9110 §8.8.3) if it is well-formed."""
    lowered = {name.lower(): value for name, value in headers.items()}
    tag = lowered.get("etag", "").strip()
    bare = tag.removeprefix("W/")
    if 2 <= len(bare) <= 256 and bare[0] == bare[-1] == '"' and '"' not in bare[1:-1]:
        return tag
    return None


def _age_seconds(value: str) -> float:
    """Return the Age header (RFC 9111 §5.1: delta-seconds); 0 when absent or malformed."""
    value = value.strip()
    return float(value) if value.isdigit() else 0.0


def _usable_keys(body: bytes) -> dict[str, jwt.PyJWK]:
    """Parse a JWK Set, keeping only public signature keys we would accept."""
    entries = _json_object(body).get("keys")
    if not isinstance(entries, list):
        raise ValueError("JWK Set has no keys array")
    keys: dict[str, jwt.PyJWK] = {}
    ambiguous: set[str] = set()
    for entry in entries:
        key = _usable_key(entry)
        if key is None or key.key_id is None:
            continue
        # RFC 7517 §4.5: kids should be distinct; if not, we cannot tell which one is meant.
        if key.key_id in keys or key.key_id in ambiguous:
            keys.pop(key.key_id, None)
            ambiguous.add(key.key_id)
            continue
        keys[key.key_id] = key
    return keys


def _usable_key(entry: object) -> jwt.PyJWK | None:
    """Return ``entry`` as a verification key, or None if it must not be used."""
    if not isinstance(entry, dict):
        return None
    kid = entry.get("kid")
    if not isinstance(kid, str) or not kid:
        return None
    # A published private or symmetric key is a leak, not a key: never trust it.
    if _PRIVATE_MEMBERS & entry.keys():
        log.warning("ignoring JWK %r: it carries private or symmetric key material", kid)
        return None
    # RFC 7517 §4.2-4.3: honour declared use and key_ops.
    if entry.get("use", "sig") != "sig":
        return None
    key_ops = entry.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    alg = entry["alg"] if "alg" in entry else _implied_alg(entry)
    if alg not in ALLOWED_ALGORITHMS:
        return None
    kty, crv = _KEY_SHAPES[alg]
    if entry.get("kty") != kty or (crv is not None and entry.get("crv") != crv):
        return None
    try:
        key = jwt.PyJWK(entry, algorithm=alg)
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    if isinstance(key.key, rsa.RSAPublicKey) and key.key.key_size < _MIN_RSA_BITS:
        return None
    return key


def _implied_alg(entry: Mapping[str, Any]) -> str | None:
    """Return the algorithm a JWK without ``alg`` is used with, if there is one."""
    kty, crv = entry.get("kty"), entry.get("crv")
    if kty == "EC" and crv == "P-256":
        return "ES256"
    if kty == "RSA":
        return "RS256"  # PS256 keys must say so: RSA keys default to PKCS#1 v1.5
    if kty == "OKP" and crv == "Ed25519":
        return "EdDSA"
    return None


def _audiences(aud: object) -> list[str]:
    """Return the ``aud`` claim as a list of strings (RFC 7519 §4.1.3)."""
    audiences = [aud] if isinstance(aud, str) else aud
    if (
        not isinstance(audiences, list)
        or not audiences
        or not all(isinstance(a, str) for a in audiences)
    ):
        raise InvalidToken("invalid claim: aud")
    return audiences


def _numeric_date(claims: Mapping[str, Any], name: str) -> float:
    """Return claim ``name`` as a NumericDate (RFC 7519 §2)."""
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidToken(f"invalid claim: {name}")
    return float(value)


def _b64url_decode(segment: str) -> bytes:
    """Decode unpadded base64url (RFC 7515 §2), strictly."""
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise InvalidToken("malformed token")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("malformed token") from None


def _object_or_invalid(data: bytes) -> dict[str, Any]:
    """Parse a token's JSON object, refusing anything ambiguous."""
    try:
        return _json_object(data)
    except ValueError:
        raise InvalidToken("malformed token") from None


def _json_object(data: bytes) -> dict[str, Any]:
    """Parse ``data`` as one JSON object; raise ValueError otherwise."""
    try:
        value = json.loads(data, object_pairs_hook=_unique_members, parse_constant=_no_constant)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build a JSON object, refusing duplicate names (RFC 7515 §5.2, RFC 8725 §3.1)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member name")
    return obj


def _no_constant(name: str) -> Any:
    """Refuse NaN and Infinity, which are not JSON (RFC 8259 §6)."""
    raise ValueError(f"invalid JSON constant {name}")


# --- Falcon integration (RFC 6750) -------------------------------------------------

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_BEARER: Final = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*)")
# RFC 6750 §3: error_description and scope exclude '"' and '\'.
_UNQUOTABLE: Final = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


class BearerAuth:
    """Require a valid bearer token (RFC 6750 §2.1) and scopes; a ``falcon.before`` hook.

    On success the claims are on ``req.context.claims``. A request without bearer
    credentials gets 401 with a bare challenge (RFC 6750 §3.1), an invalid token 401
    ``invalid_token``, missing scopes 403 ``insufficient_scope``, a malformed header
    400 ``invalid_request``, and unreachable signing keys 503 with Retry-After.
    Verification may fetch keys over the network: for WSGI apps.
    """

    def __init__(
        self, verifier: Verifier, *, required_scopes: Iterable[str] = (), realm: str = "jwtauth"
    ) -> None:
        """Configure which verifier, scopes and realm the hook uses."""
        self._verifier = verifier
        self._required = frozenset(required_scopes)
        if not realm or _UNQUOTABLE.search(realm):
            raise ValueError("realm must be printable ASCII without quotes or backslashes")
        self._realm = realm

    def __call__(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict[str, Any]
    ) -> None:
        """Authenticate ``req`` before the responder runs."""
        req.context.claims = self.authenticate(req)

    def authenticate(self, req: falcon.Request) -> dict[str, Any]:
        """Return the verified claims of ``req``'s bearer token, or raise an HTTP error."""
        token = self._bearer_token(req)
        try:
            claims = self._verifier.verify(token)
        except VerifierUnavailable as exc:
            raise falcon.HTTPServiceUnavailable(
                description=exc.reason,
                retry_after=math.ceil(self._verifier.refetch_interval),
            ) from None
        except InvalidToken as exc:
            raise falcon.HTTPUnauthorized(
                description=exc.reason,
                challenges=[self._challenge(error="invalid_token", error_description=exc.reason)],
            ) from None
        # RFC 6750 §3.1: the token is fine but does not grant enough.
        if not self._required <= token_scopes(claims):
            scope = " ".join(sorted(self._required))
            raise falcon.HTTPForbidden(
                description="insufficient scope",
                headers={
                    "WWW-Authenticate": self._challenge(error="insufficient_scope", scope=scope)
                },
            )
        return claims

    def _bearer_token(self, req: falcon.Request) -> str:
        """Return the token from ``Authorization: Bearer``, or raise 400/401."""
        value = req.get_header("Authorization")
        scheme = value.split(" ", 1)[0] if value else ""
        # RFC 6750 §3.1: no bearer credentials at all → a challenge without error codes.
        if scheme.lower() != "bearer":
            raise falcon.HTTPUnauthorized(challenges=[self._challenge()])
        match = _BEARER.fullmatch(value or "")
        if match is None:
            raise falcon.HTTPBadRequest(
                description="malformed Authorization header",
                headers={
                    "WWW-Authenticate": self._challenge(
                        error="invalid_request",
                        error_description="malformed Authorization header",
                    )
                },
            )
        return match.group(1)

    def _challenge(self, **params: str) -> str:
        """Build a Bearer challenge (RFC 6750 §3) with quoted, sanitised parameters."""
        quoted = [f'{name}="{_UNQUOTABLE.sub("?", value)}"' for name, value in params.items()]
        return ", ".join([f'Bearer realm="{self._realm}"', *quoted])


class RequireBearer:
    """Require a valid bearer token on every request; Falcon middleware.

    Puts the claims on ``req.context.claims``. Paths in ``exempt_paths`` (exact
    matches, e.g. ``/healthz``) pass without a token. Per-resource scopes are
    better expressed with ``falcon.before(BearerAuth(...))``.
    """

    def __init__(
        self,
        verifier: Verifier,
        *,
        required_scopes: Iterable[str] = (),
        realm: str = "jwtauth",
        exempt_paths: Collection[str] = (),
    ) -> None:
        """Configure the verifier, scopes, realm and exempt paths."""
        self._auth = BearerAuth(verifier, required_scopes=required_scopes, realm=realm)
        self._exempt = frozenset(exempt_paths)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Authenticate ``req`` before routing, so unknown paths leak nothing."""
        if req.path in self._exempt:
            return
        req.context.claims = self._auth.authenticate(req)
