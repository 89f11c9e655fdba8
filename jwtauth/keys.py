"""Signing keys: files in keys/, their lifecycle derived from dates and the clock, the JWK Set.

Each key is one JSON file `keys/<kid>.json` (mode 0600, written atomically: temp file, fsync,
rename) holding the private key PEM and its lifecycle dates. Nothing else holds state, so every
worker on every host that mounts the same folder derives the same signer and the same JWKS:

- a key is *next* (published, not signing) until its `active_from`;
- the newest key whose `active_from` has passed is *active* (the only signer);
- an older key is *retiring* (published) until `retire_after` seconds after its successor
  became active — the longest access-token lifetime plus leeway — then *retired*;
- a *revoked* key is withdrawn from the JWKS at once.

New keys are published `publish_ahead` seconds before they sign (at least the JWKS cache
lifetime), so a resource server that refreshes its JWKS on schedule never meets an unknown kid.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

log = logging.getLogger("jwtauth.keys")

ALGORITHMS = ("ES256", "RS256", "PS256", "EdDSA")
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
_LOCK_NAME = ".lock"


class KeyError_(Exception):
    """A key operation failed with a message fit for an operator."""


@dataclass(frozen=True)
class KeyRecord:
    """One key file: identity, algorithm, lifecycle dates (epoch seconds) and the private key."""

    kid: str
    alg: str
    created: float
    active_from: float
    revoked_at: float | None
    private_key: PrivateKey

    def public_jwk(self) -> dict[str, Any]:
        """Return the public JWK with kid, use and alg (RFC 7517 §4)."""
        public = self.private_key.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        elif isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}


@dataclass(frozen=True)
class KeyState:
    """A key's place in the lifecycle at one moment."""

    record: KeyRecord
    state: str  # next | active | retiring | retired | revoked
    published: bool
    until: float | None  # when the state ends, if it is bound to end


def generate_private_key(alg: str) -> PrivateKey:
    """Create a fresh private key for a JWS algorithm."""
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg in ("RS256", "PS256"):
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise KeyError_(f"unknown algorithm {alg!r}; choose one of {', '.join(ALGORITHMS)}")


def thumbprint(jwk: dict[str, Any]) -> str:
    """Return the RFC 7638 SHA-256 JWK thumbprint, used as the kid."""
    required = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}
    members = {k: jwk[k] for k in required[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def _key_matches_alg(key: object, alg: str) -> bool:
    if alg == "ES256":
        return isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    if alg in ("RS256", "PS256"):
        return isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048
    return alg == "EdDSA" and isinstance(key, ed25519.Ed25519PrivateKey)


def new_record(alg: str, now: float, active_from: float) -> KeyRecord:
    """Create a key record with a fresh private key."""
    private = generate_private_key(alg)
    draft = KeyRecord("", alg, now, active_from, None, private)
    return replace(draft, kid=thumbprint(draft.public_jwk()))


def dump_record(record: KeyRecord) -> bytes:
    """Serialize a record to the file format."""
    pem = record.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    doc = {
        "kid": record.kid,
        "alg": record.alg,
        "created": record.created,
        "active_from": record.active_from,
        "revoked_at": record.revoked_at,
        "private_key": pem.decode("ascii"),
    }
    return json.dumps(doc, indent=2).encode() + b"\n"


def load_record(data: bytes) -> KeyRecord:
    """Parse a key file; raise ValueError naming what is wrong."""
    doc = json.loads(data)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    alg, kid = doc.get("alg"), doc.get("kid")
    if alg not in ALGORITHMS or not isinstance(kid, str) or not kid:
        raise ValueError(f"bad alg {alg!r} or kid {kid!r}")
    private = serialization.load_pem_private_key(str(doc["private_key"]).encode(), password=None)
    if not _key_matches_alg(private, alg):
        raise ValueError(f"the private key does not fit {alg}")
    revoked = doc.get("revoked_at")
    return KeyRecord(
        kid=kid,
        alg=alg,
        created=float(doc["created"]),
        active_from=float(doc["active_from"]),
        revoked_at=None if revoked is None else float(revoked),
        private_key=private,  # type: ignore[arg-type]  # checked by _key_matches_alg
    )


def lifecycle(records: Sequence[KeyRecord], now: float, retire_after: float) -> list[KeyState]:
    """Derive every key's state at `now`: pure, so every worker computes the same answer."""
    ordered = sorted(records, key=lambda r: (r.active_from, r.kid))
    started = [r for r in ordered if r.active_from <= now]
    states: list[KeyState] = []
    for record in ordered:
        if record.revoked_at is not None and record.revoked_at <= now:
            states.append(KeyState(record, "revoked", False, None))
        elif record.active_from > now:
            states.append(KeyState(record, "next", True, record.active_from))
        elif record is started[-1]:
            states.append(KeyState(record, "active", True, None))
        else:
            successor = started[started.index(record) + 1]
            ends = successor.active_from + retire_after
            states.append(KeyState(record, "retiring" if now < ends else "retired", now < ends, ends))
    return states


def signer_of(states: Sequence[KeyState]) -> KeyRecord | None:
    """Return the active key, if there is one that is not revoked."""
    return next((s.record for s in states if s.state == "active"), None)


@dataclass(frozen=True)
class _Snapshot:
    signer: KeyRecord | None
    published: dict[str, KeyRecord]
    jwks: bytes
    etag: str
    valid_until: float  # the next moment a state changes by the clock alone


def _snapshot(records: Sequence[KeyRecord], now: float, retire_after: float) -> _Snapshot:
    states = lifecycle(records, now, retire_after)
    jwks = json.dumps(
        {"keys": [s.record.public_jwk() for s in states if s.published]}, separators=(",", ":")
    ).encode()
    ends = [s.until for s in states if s.until is not None and s.until > now]
    ends += [r.revoked_at for r in records if r.revoked_at is not None and r.revoked_at > now]
    etag = '"' + hashlib.sha256(jwks).hexdigest()[:32] + '"'
    published = {s.record.kid: s.record for s in states if s.published}
    return _Snapshot(signer_of(states), published, jwks, etag, min(ends, default=float("inf")))


class KeyRing:
    """The keys of one keys/ folder, reloaded when the folder changes (checked once a second)."""

    def __init__(self, directory: Path, *, retire_after: float, check_interval: float = 1.0) -> None:
        self.directory = directory
        self.retire_after = retire_after
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._files: dict[str, tuple[tuple[int, int], KeyRecord | None]] = {}
        self._fingerprint: tuple[tuple[str, int, int], ...] | None = None
        self._next_check = 0.0
        self._snap = _Snapshot(None, {}, b'{"keys":[]}', '""', 0.0)
        self.refresh(force=True)

    @property
    def records(self) -> list[KeyRecord]:
        """Return every readable key record."""
        return [rec for _, rec in self._files.values() if rec is not None]

    def _scan(self) -> tuple[tuple[str, int, int], ...]:
        try:
            entries = [e for e in os.scandir(self.directory) if e.name.endswith(".json")]
        except FileNotFoundError:
            return ()
        out = []
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                st = entry.stat()
                out.append((entry.name, st.st_mtime_ns, st.st_size))
        return tuple(sorted(out))

    def _load(self, fingerprint: tuple[tuple[str, int, int], ...]) -> None:
        files: dict[str, tuple[tuple[int, int], KeyRecord | None]] = {}
        for name, mtime, size in fingerprint:
            cached = self._files.get(name)
            if cached is not None and cached[0] == (mtime, size):
                files[name] = cached  # never re-parse a PEM that did not change
                continue
            try:
                record: KeyRecord | None = load_record((self.directory / name).read_bytes())
            except (OSError, ValueError, KeyError, TypeError) as exc:
                # A corrupt or unreadable file must not take the service down: skip it loudly.
                log.error("skipping key file %s: %s", self.directory / name, exc)
                record = None
            files[name] = ((mtime, size), record)
        self._files = files

    def refresh(self, *, force: bool = False, now: float | None = None) -> None:
        """Reload if the folder changed or a lifecycle date passed; cheap when nothing did."""
        clock = time.time() if now is None else now
        mono = time.monotonic()
        if not force and mono < self._next_check and clock < self._snap.valid_until:
            return
        with self._lock:
            self._next_check = mono + self.check_interval
            fingerprint = self._scan()
            if force or fingerprint != self._fingerprint:
                self._load(fingerprint)
                self._fingerprint = fingerprint
            self._snap = _snapshot(self.records, clock, self.retire_after)

    def signer(self) -> KeyRecord | None:
        """Return the key that signs now, or None when no key can sign."""
        self.refresh()
        return self._snap.signer

    def jwks(self) -> tuple[bytes, str]:
        """Return the JWK Set document and its ETag."""
        self.refresh()
        return self._snap.jwks, self._snap.etag

    def published(self, kid: str) -> KeyRecord | None:
        """Return the published key with this kid (for verifying our own tokens), or None."""
        self.refresh()
        return self._snap.published.get(kid)


# --- writing keys (the `jwtauth keys` command) ---------------------------------------------


@contextlib.contextmanager
def folder_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on the folder so concurrent rotations run one after another."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(directory / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_record(directory: Path, record: KeyRecord) -> Path:
    """Write a key file atomically with mode 0600: readers see the old file or the whole new one."""
    target = directory / f"{record.kid}.json"
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(dump_record(record))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return target


def read_folder(directory: Path) -> list[KeyRecord]:
    """Return every readable key in a folder (unreadable ones are logged and skipped)."""
    ring = KeyRing(directory, retire_after=0)
    return ring.records


def rotate(
    directory: Path,
    alg: str,
    *,
    now: float,
    publish_ahead: float,
    retire_after: float,
    immediately: bool = False,
) -> KeyRecord:
    """Add a key: published at once, signing after `publish_ahead` (or now if none signs)."""
    with folder_lock(directory):
        states = lifecycle(read_folder(directory), now, retire_after)
        pending = [s.record.active_from for s in states if s.state == "next"]
        if immediately or signer_of(states) is None:
            active_from = now
        else:
            # Queue behind a pending key so two rotations never start signing at the same moment.
            active_from = max([now + publish_ahead, *(p + 1 for p in pending)])
        record = new_record(alg, now, active_from)
        write_record(directory, record)
        return record


def ensure(directory: Path, alg: str, *, now: float, retire_after: float) -> KeyRecord | None:
    """Create a first key if no key can sign; return it, or None if one already existed."""
    with folder_lock(directory):
        if signer_of(lifecycle(read_folder(directory), now, retire_after)) is not None:
            return None
        record = new_record(alg, now, now)
        write_record(directory, record)
        return record


def revoke(directory: Path, kid: str, *, now: float, retire_after: float) -> KeyRecord | None:
    """Withdraw a key at once; if it was the signer, a new key of its algorithm signs at once."""
    with folder_lock(directory):
        records = read_folder(directory)
        target = next((r for r in records if r.kid == kid), None)
        if target is None:
            raise KeyError_(f"no key with kid {kid!r} in {directory}")
        was_signer = signer_of(lifecycle(records, now, retire_after)) == target
        write_record(directory, replace(target, revoked_at=now))
        if not was_signer:
            return None
        replacement = new_record(target.alg, now, now)
        write_record(directory, replacement)
        return replacement


def prune(directory: Path, *, now: float, retire_after: float) -> list[str]:
    """Delete the files of retired and revoked keys; return their kids."""
    with folder_lock(directory):
        gone = [
            s.record.kid
            for s in lifecycle(read_folder(directory), now, retire_after)
            if s.state in ("retired", "revoked")
        ]
        for kid in gone:
            (directory / f"{kid}.json").unlink(missing_ok=True)
        return gone
