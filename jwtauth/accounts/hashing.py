"""Slow, salted secret hashes (scrypt) and a per-process fast path for secrets already proven.

Config files hold only scrypt hashes, so a stolen config reveals nothing cheaper to attack
than scrypt. Checking scrypt costs tens of milliseconds, which would cap the token endpoint
at a few dozen tokens per second per core (peers that bcrypt client secrets top out near 100/s,
Hydra #168). So once a presented secret has been proven against its scrypt hash, the process
remembers HMAC-SHA256(process_key, secret) for that hash: later requests cost one HMAC and
one constant-time compare (microseconds). The process key is random per process and never
leaves memory, so the memo is useless to anyone who steals the config or reads a core dump
less than the whole process.

A slow KDF protects low-entropy secrets only. Secrets `jwtauth clients add` generates carry 256
bits, which no amount of hashing speed lets anyone guess, so they are stored as a fast keyed
hash, `hmac-sha256$<salt>$<hmac>` (issue 18): checking one costs microseconds, which takes the
scrypt cost an unauthenticated request can buy away. Passwords must stay scrypt (config refuses
the fast form for users), and so should any client secret a human chose.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import Counter
from collections.abc import Iterable

from jwt.utils import base64url_decode, base64url_encode

_PREFIX = "scrypt"
_FAST = "hmac-sha256"
FAST_COST = (0, 0, 0)  # the (log_n, r, p) `typical_parameters` reports for a fast hash
# RFC 7914 parameters: ln=15 (N=32768), r=8, p=1 ≈ 32 MiB and ~50 ms on one core today.
DEFAULT_LOG_N = 15
_R = 8
_P = 1
_DKLEN = 32
# What one check may use: ln=18, r=8 (256 MiB). ln=17, r=8 is OWASP's minimum for passwords.
MAX_MEMORY = 256 * 1024 * 1024


class HashFormatError(ValueError):
    """A stored hash is not of the form hash_secret() produces."""


def memory(log_n: int, r: int, p: int) -> int:
    """Return the bytes scrypt needs for these parameters (RFC 7914 §5: V, plus B and X)."""
    return 128 * r * ((1 << log_n) + p + 2)


def _derive(secret: bytes, salt: bytes, log_n: int, r: int, p: int) -> bytes:
    # The cap is sized from the parameters (issue 18): a fixed 128 MiB failed ln=17, r=8 on
    # every check, a 500 for a hash the configuration had accepted.
    maxmem = memory(log_n, r, p) + 1024 * 1024
    return hashlib.scrypt(secret, salt=salt, n=1 << log_n, r=r, p=p, maxmem=maxmem, dklen=_DKLEN)


def hash_secret(
    secret: str, *, log_n: int = DEFAULT_LOG_N, salt: bytes | None = None, r: int = _R, p: int = _P
) -> str:
    """Hash a secret for the config file: `scrypt$ln=15,r=8,p=1$<salt>$<hash>`."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = _derive(secret.encode("utf-8"), salt, log_n, r, p)
    encoded = (base64url_encode(part).decode("ascii") for part in (salt, digest))
    return f"{_PREFIX}$ln={log_n},r={r},p={p}$" + "$".join(encoded)


def fast_hash(secret: str, *, salt: bytes | None = None) -> str:
    """Hash a generated high-entropy secret: `hmac-sha256$<salt>$<hmac>` (never for passwords)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hmac.new(salt, secret.encode("utf-8"), hashlib.sha256).digest()
    return f"{_FAST}$" + "$".join(base64url_encode(part).decode("ascii") for part in (salt, digest))


def is_fast(stored: str) -> bool:
    """Return whether `stored` is a fast keyed hash (see `fast_hash`)."""
    return stored.startswith(_FAST + "$")


def _parse_fast(stored: str) -> tuple[bytes, bytes]:
    parts = stored.split("$")
    try:
        salt, digest = base64url_decode(parts[1]), base64url_decode(parts[2])
    except (IndexError, ValueError) as exc:
        raise HashFormatError("expected hmac-sha256$salt$hash") from exc
    if len(parts) != 3 or len(salt) < 8 or len(digest) != _DKLEN:
        raise HashFormatError("expected hmac-sha256$salt$hash (salt of 8+ bytes, hash of 32)")
    return salt, digest


def check_format(stored: str) -> None:
    """Raise HashFormatError unless `stored` is a hash this module checks (scrypt or fast)."""
    if is_fast(stored):
        _parse_fast(stored)
    else:
        parse_hash(stored)


def parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    """Split a stored hash into (log_n, r, p, salt, digest); raise HashFormatError if malformed."""
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] != _PREFIX:
        raise HashFormatError("expected scrypt$ln=..,r=..,p=..$salt$hash")
    try:
        params = dict(item.split("=", 1) for item in parts[1].split(","))
        log_n, r, p = int(params["ln"]), int(params["r"]), int(params["p"])
        salt, digest = base64url_decode(parts[2]), base64url_decode(parts[3])
    except (KeyError, ValueError) as exc:
        raise HashFormatError("unreadable scrypt parameters, salt or hash") from exc
    if not (10 <= log_n <= 20 and 1 <= r <= 32 and 1 <= p <= 16):
        raise HashFormatError("scrypt parameters out of range (ln 10..20, r 1..32, p 1..16)")
    if memory(log_n, r, p) > MAX_MEMORY:
        # Checked where the config is read, so `jwtauth check-config` refuses what would fail.
        needed = memory(log_n, r, p) // (1024 * 1024)
        raise HashFormatError(f"scrypt ln={log_n}, r={r} needs {needed} MiB per check; at most 256 MiB")
    if len(salt) < 8 or len(digest) != _DKLEN:
        raise HashFormatError("salt shorter than 8 bytes or hash not 32 bytes")
    return log_n, r, p, salt, digest


def typical_parameters(hashes: Iterable[str]) -> tuple[int, int, int]:
    """Return the (log_n, r, p) most of `hashes` use (the costlier on a tie); the default if none."""
    counts = Counter(FAST_COST if is_fast(h) else parse_hash(h)[:3] for h in hashes)
    if not counts:
        return DEFAULT_LOG_N, _R, _P
    # Cost grows with N * r * p; a tie goes to the costlier, so an unknown name is never cheaper.
    return max(counts, key=lambda params: (counts[params], (1 << params[0]) * params[1] * params[2]))


class SecretChecker:
    """Check presented secrets against scrypt hashes, remembering proven ones as an HMAC.

    Unknown accounts are checked against a dummy hash with the scrypt parameters the caller
    names (`like`, see `typical_parameters`), so they cost what a wrong secret for a known
    account costs: no timing oracle for which names exist. `dummy_log_n` pins the dummy's
    cost instead (tests that fail many checks quickly).
    """

    def __init__(self, dummy_log_n: int | None = None) -> None:
        self._key = secrets.token_bytes(32)
        self._base = hmac.new(self._key, digestmod=hashlib.sha256)
        self._proven: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._dummy_log_n = dummy_log_n
        self._dummies: dict[tuple[int, int, int], str] = {}
        self._fast_dummy = fast_hash(secrets.token_urlsafe(32))

    def _dummy_hash(self, like: tuple[int, int, int] | None) -> str:
        if like == FAST_COST:
            return self._fast_dummy
        if self._dummy_log_n is not None:
            like = (self._dummy_log_n, _R, _P)
        log_n, r, p = like or (DEFAULT_LOG_N, _R, _P)
        dummy = self._dummies.get((log_n, r, p))
        if dummy is None:
            dummy = hash_secret(secrets.token_urlsafe(16), log_n=log_n, r=r, p=p)
            with self._lock:
                self._dummies[(log_n, r, p)] = dummy
        return dummy

    def _mac(self, secret: bytes) -> bytes:
        # A copy of a keyed HMAC rather than hmac.digest, which releases the GIL for a
        # microsecond's work (store/pepper.py says what that cost a served worker).
        mac = self._base.copy()
        mac.update(secret)
        return mac.digest()

    def proven(self, stored: str, presented: str) -> bool:
        """Return whether `presented` was already proven against `stored`; never runs scrypt.

        False means "not known here", not "wrong": the caller falls back to `check`.
        """
        known = self._proven.get(stored)
        raw = presented.encode("utf-8", "surrogatepass")
        return known is not None and hmac.compare_digest(known, self._mac(raw))

    def cheap(self, stored: str | None, presented: str, *, like: tuple[int, int, int] | None = None) -> bool:
        """Return whether `check` would cost no scrypt: a fast hash (or dummy), or a proven secret.

        Unknown accounts answer like the typical known one (`like`), so this reveals nothing.
        """
        if stored is None:
            return like == FAST_COST
        return is_fast(stored) or self.proven(stored, presented)

    def check(self, stored: str | None, presented: str, *, like: tuple[int, int, int] | None = None) -> bool:
        """Return whether `presented` matches `stored`; None means "no such account".

        `like`: the (log_n, r, p) an unknown account costs, those of the caller's known accounts.
        """
        raw = presented.encode("utf-8", "surrogatepass")
        if stored is not None:
            proven = self._proven.get(stored)
            if proven is not None and hmac.compare_digest(proven, self._mac(raw)):
                return True
        target = stored if stored is not None else self._dummy_hash(like)
        if is_fast(target):
            salt, digest = _parse_fast(target)
            mac = hmac.new(salt, raw, hashlib.sha256).digest()
            return hmac.compare_digest(mac, digest) and stored is not None
        log_n, r, p, salt, digest = parse_hash(target)
        ok = hmac.compare_digest(_derive(raw, salt, log_n, r, p), digest) and stored is not None
        if ok and stored is not None:
            with self._lock:
                self._proven[stored] = self._mac(raw)
        return ok
