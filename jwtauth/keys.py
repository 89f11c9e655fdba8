"""Signing keys: files in keys/, their lifecycle derived from dates and the clock, the JWK Set.

Each key is one JSON file `keys/<kid>.json` (mode 0600, written atomically: temp file, fsync,
rename) holding the private key PEM and its lifecycle dates. Nothing else holds state, so every
worker on every host that mounts the same folder derives the same signer and the same JWKS:

- a key is *next* (published, not signing) until its `active_from`;
- the newest key whose `active_from` has passed and that is not revoked is *active* (the only
  signer);
- an older key is *retiring* (published) until `retire_after` seconds after its successor
  started signing — the longest access-token lifetime plus leeway — then *retired*;
- a *revoked* key is withdrawn from the JWKS at once. A key revoked before it ever signed
  never displaces the signer; one revoked after it signed leaves its predecessor retired, so a
  revocation never brings an old key back (the `revoke` command adds a replacement first).

New keys are published `publish_ahead` seconds (at least the JWKS cache lifetime) plus
`PROPAGATION` before they sign, so a resource server that refreshes its JWKS on schedule never
meets an unknown kid, even one that fetched from a worker that had not yet reloaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from jwtauth.store.pepper import Pepper, read_pepper
from jwtauth.verify.dpop import jwk_thumbprint

log = logging.getLogger("jwtauth.keys")

ALGORITHMS = ("ES256", "RS256", "PS256", "EdDSA")
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

# Workers look at the folder at most this often (seconds): the hot path stays a clock read.
RELOAD_INTERVAL = 1.0
# A new key signs only after every worker can have reloaded it, plus a second of clock skew
# between hosts: a JWKS fetched from a worker that had not reloaded yet expires before the
# key signs, because config.py keeps the JWKS max-age <= publish_ahead.
PROPAGATION = RELOAD_INTERVAL + 1.0


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


def thumbprint(jwk: dict[str, Any]) -> str:
    """Return the RFC 7638 SHA-256 JWK thumbprint, used as the kid (and as DPoP's jkt)."""
    return jwk_thumbprint(jwk)


def _key_matches_alg(key: object, alg: str) -> bool:
    if alg == "ES256":
        return isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    if alg in ("RS256", "PS256"):
        return isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048
    return alg == "EdDSA" and isinstance(key, ed25519.Ed25519PrivateKey)


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
    try:
        return _parse_record(json.loads(data))
    except ValueError:
        raise
    except Exception as exc:  # KeyError, TypeError, UnsupportedAlgorithm...: all mean corrupt
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc


def _parse_record(doc: object) -> KeyRecord:
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


def _revoked(record: KeyRecord, now: float) -> bool:
    return record.revoked_at is not None and record.revoked_at <= now


def _ever_signed(record: KeyRecord) -> bool:
    """Tell whether a key was (or is) the signer at some moment: not revoked before it started."""
    return record.revoked_at is None or record.revoked_at > record.active_from


def lifecycle(records: Sequence[KeyRecord], now: float, retire_after: float) -> list[KeyState]:
    """Derive every key's state at `now`: pure, so every worker computes the same answer."""
    ordered = sorted(records, key=lambda r: (r.active_from, r.kid))
    # The succession of signers: each took over from the one before at its active_from.
    signers = [r for r in ordered if r.active_from <= now and _ever_signed(r)]
    successor = {id(a): b for a, b in itertools.pairwise(signers)}
    states: list[KeyState] = []
    for record in ordered:
        if _revoked(record, now):
            states.append(KeyState(record, "revoked", False, None))
        elif record.active_from > now:
            states.append(KeyState(record, "next", True, record.active_from))
        elif id(record) not in successor:
            states.append(KeyState(record, "active", True, record.revoked_at))
        else:
            ends = successor[id(record)].active_from + retire_after
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
    valid_from: float  # the moment it was derived for
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
    valid_until = min(ends, default=float("inf"))
    return _Snapshot(signer_of(states), published, jwks, etag, now, valid_until)


def read_key_file(path: Path) -> KeyRecord | None:
    """Load one key file, or log why it is unusable and return None."""
    try:
        record = load_record(path.read_bytes())
        if path.name != f"{record.kid}.json":
            # Two files with one kid would publish an ambiguous JWKS (RFC 7517 §4.5).
            raise ValueError(f"holds kid {record.kid!r}; the file must be named {record.kid}.json")
    except (OSError, ValueError) as exc:
        # A corrupt or unreadable file must not take the service down: skip it loudly, once.
        log.error("skipping key file %s: %s", path, exc)
        return None
    return record


_Stat = tuple[int, int, int, int]  # mtime_ns, size, inode, ctime_ns: any rewrite changes one


class KeyRing:
    """The keys of one keys/ folder, reloaded when the folder changes (checked once a second).

    signer(), jwks() and published() are the hot path: while neither the check interval nor a
    lifecycle date has passed they cost two clock reads. A reload stats the `*.json` files and
    parses only those whose stat changed, so an unchanged PEM is never parsed twice.
    """

    def __init__(
        self,
        directory: Path,
        *,
        retire_after: float,
        check_interval: float = RELOAD_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.retire_after = retire_after
        self.check_interval = check_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._files: dict[str, tuple[_Stat, KeyRecord | None]] = {}
        self._fingerprint: tuple[tuple[str, _Stat], ...] | None = None
        self._next_check = 0.0
        self._snap = _Snapshot(None, {}, b'{"keys":[]}', '""', 0.0, 0.0)
        self._listeners: list[Callable[[], None]] = []
        # Read once: it never changes while Redis holds values that depend on it.
        self.pepper: Pepper | None = read_pepper(directory)
        self.refresh(force=True)

    @property
    def records(self) -> list[KeyRecord]:
        """Return every readable key record."""
        return [rec for _, rec in self._files.values() if rec is not None]

    @property
    def skipped(self) -> list[str]:
        """Return the names of key files that could not be used (each was logged once)."""
        return sorted(name for name, (_, rec) in self._files.items() if rec is None)

    def _scan(self) -> tuple[tuple[str, _Stat], ...] | None:
        """Stat the key files; None when the folder cannot be listed (keep what we have)."""
        try:
            entries = [e for e in os.scandir(self.directory) if e.name.endswith(".json")]
        except FileNotFoundError:
            return ()
        except OSError as exc:
            # A passing I/O or permission error must not withdraw every key at once.
            log.error("cannot list the keys folder %s, keeping the keys loaded: %s", self.directory, exc)
            return None
        out = []
        for entry in entries:
            with contextlib.suppress(OSError):  # deleted or unreadable between scandir and stat
                st = entry.stat()  # follows symlinks, as in a mounted Kubernetes secret
                out.append((entry.name, (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)))
        return tuple(sorted(out))

    def _load(self, fingerprint: tuple[tuple[str, _Stat], ...]) -> None:
        files: dict[str, tuple[_Stat, KeyRecord | None]] = {}
        for name, stat in fingerprint:
            cached = self._files.get(name)
            if cached is not None and cached[0] == stat:
                files[name] = cached  # never re-parse a PEM that did not change
            else:
                files[name] = (stat, read_key_file(self.directory / name))
        self._files = files

    def refresh(self, *, force: bool = False, now: float | None = None) -> None:
        """Reload if the folder changed or a lifecycle date passed; cheap when nothing did."""
        clock = self._clock() if now is None else now
        snap = self._snap
        if not force and time.monotonic() < self._next_check and snap.valid_from <= clock < snap.valid_until:
            return
        with self._lock:
            mono, snap = time.monotonic(), self._snap
            current = snap.valid_from <= clock < snap.valid_until
            if not force and mono < self._next_check and current:
                return  # another thread reloaded while this one waited for the lock
            self._next_check = mono + self.check_interval
            first = self._fingerprint is None
            fingerprint = self._scan()
            if fingerprint is None:
                fingerprint = self._fingerprint or ()
            changed = force or fingerprint != self._fingerprint
            if changed:
                self._load(fingerprint)
                self._fingerprint = fingerprint
            if changed or not current:  # else the snapshot still holds: skip the JWKS rebuild
                self._snap = _snapshot(self.records, clock, self.retire_after)
                self._log_change(snap.signer, self._snap.signer, first=first)

    def _log_change(self, before: KeyRecord | None, after: KeyRecord | None, *, first: bool) -> None:
        """Log when the signer changes, once per change (every worker logs its own view)."""
        if after is None and (before is not None or first):
            log.error("no key can sign in %s: not ready until one does", self.directory)
        elif after is not None and not first and (before is None or before.kid != after.kid):
            log.info("key %s (%s) signs from now on", after.kid, after.alg)
            for listener in self._listeners:
                listener()

    def on_signer_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever another key starts signing (after the first one loaded)."""
        self._listeners.append(listener)

    def signer(self) -> KeyRecord | None:
        """Return the key that signs now, or None when no key can sign."""
        self.refresh()
        return self._snap.signer

    def jwks(self) -> tuple[bytes, str]:
        """Return the JWK Set document and its strong ETag (the same in every worker)."""
        self.refresh()
        return self._snap.jwks, self._snap.etag

    def published(self, kid: str) -> KeyRecord | None:
        """Return the published key with this kid (for verifying our own tokens), or None."""
        self.refresh()
        return self._snap.published.get(kid)
