"""Write the key folder: add, ensure, revoke and prune keys (the `jwtauth keys` command).

Workers only read keys/ (jwtauth.keys); every write here holds the folder's lock and replaces
files atomically, so concurrent commands serialize and a worker never reads half a key.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from jwtauth.cli.console import OperatorError
from jwtauth.cli.files import folder_lock, remove_orphans, write_atomically
from jwtauth.keys import (
    ALGORITHMS,
    PROPAGATION,
    KeyRecord,
    PrivateKey,
    dump_record,
    lifecycle,
    read_key_file,
    signer_of,
    thumbprint,
)
from jwtauth.store.pepper import PEPPER_FILE, new_pepper_text


def generate_private_key(alg: str) -> PrivateKey:
    """Create a fresh private key for a JWS algorithm."""
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg in ("RS256", "PS256"):
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise OperatorError(f"unknown algorithm {alg!r}; choose one of {', '.join(ALGORITHMS)}")


def new_record(alg: str, now: float, active_from: float, private: PrivateKey | None = None) -> KeyRecord:
    """Create a key record, with a fresh private key unless one is given."""
    private = private or generate_private_key(alg)
    draft = KeyRecord("", alg, now, active_from, None, private)
    return replace(draft, kid=thumbprint(draft.public_jwk()))


def write_record(directory: Path, record: KeyRecord) -> Path:
    """Write a key file atomically with mode 0600: readers see the old file or the whole new one."""
    target = directory / f"{record.kid}.json"
    write_atomically(target, dump_record(record), mode=0o600)
    return target


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Create the folder if needed, hold its lock, and clear what a dead writer left."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with folder_lock(directory):
        remove_orphans(directory)
        yield


def ensure_pepper(directory: Path) -> bool:
    """Write the folder's pepper if it has none (caller holds the lock); return whether it did.

    Never replaced once written: every digest and sealed value in Redis depends on it.
    """
    target = directory / PEPPER_FILE
    if target.exists():
        return False
    write_atomically(target, new_pepper_text().encode("ascii"), mode=0o600)
    return True


def read_folder(directory: Path) -> list[KeyRecord]:
    """Return every readable key in a folder (unreadable ones are logged and skipped)."""
    if not directory.is_dir():
        return []
    paths = sorted(p for p in directory.iterdir() if p.name.endswith(".json"))
    return [r for r in map(read_key_file, paths) if r is not None]


def _clock(now: float | None) -> float:
    return time.time() if now is None else now


def rotate(
    directory: Path,
    alg: str,
    *,
    publish_ahead: float,
    retire_after: float,
    immediately: bool = False,
    now: float | None = None,
) -> KeyRecord:
    """Add a key: published at once, signing after `publish_ahead` + PROPAGATION.

    With `immediately` it signs after PROPAGATION only (every worker publishes it by then);
    when no key signs at all it signs at once. `now` defaults to the clock once the lock is held.
    """
    private = generate_private_key(alg)  # RSA takes seconds: before the lock and the clock
    with _locked(directory):
        ensure_pepper(directory)  # every folder a key is added to can serve (jwtauth.store.pepper)
        at = _clock(now)
        states = lifecycle(read_folder(directory), at, retire_after)
        if signer_of(states) is None:
            active_from = at  # nothing signs, so nobody can be confused: serve at once
        elif immediately:
            active_from = at + PROPAGATION
        else:
            # Queue behind a pending key so two rotations never start signing at the same moment.
            pending = [s.record.active_from + 1 for s in states if s.state == "next"]
            active_from = max([at + publish_ahead + PROPAGATION, *pending])
        record = new_record(alg, at, active_from, private)
        write_record(directory, record)
        return record


def ensure(directory: Path, alg: str, *, retire_after: float, now: float | None = None) -> KeyRecord | None:
    """Create a first key if no key can sign (and the pepper if missing); return the new key or None."""
    with _locked(directory):
        ensure_pepper(directory)
        if signer_of(lifecycle(read_folder(directory), _clock(now), retire_after)) is not None:
            return None
        private = generate_private_key(alg)
        at = _clock(now)
        record = new_record(alg, at, at, private)
        write_record(directory, record)
        return record


def revoke(
    directory: Path, kid: str, *, retire_after: float, alg: str | None = None, now: float | None = None
) -> KeyRecord | None:
    """Withdraw a key at once; if it was the signer, a new key (same or `alg`) signs at once.

    The replacement is written before the revocation, so no worker ever sees a moment without
    a signer, and none sees the revoked key's predecessor sign again.
    """
    with _locked(directory):
        records = read_folder(directory)
        target = next((r for r in records if r.kid == kid), None)
        if target is None:
            raise OperatorError(f"no key with kid {kid!r} in {directory}")
        if target.revoked_at is not None and target.revoked_at <= _clock(now):
            raise OperatorError(f"key {kid} was already revoked")
        replacement = None
        if signer_of(lifecycle(records, _clock(now), retire_after)) is target:
            private = generate_private_key(alg or target.alg)
            at = _clock(now)
            # A compromised signer must stop now: the replacement cannot wait to be published
            # ahead; resource servers meet its kid as unknown and refetch the JWKS.
            replacement = new_record(alg or target.alg, at, at, private)
            write_record(directory, replacement)
        write_record(directory, replace(target, revoked_at=_clock(now)))
        return replacement


def prune(directory: Path, *, retire_after: float, now: float | None = None) -> list[str]:
    """Delete the files of retired and revoked keys (and orphaned temp files); return the kids."""
    with _locked(directory):
        gone = [
            s.record.kid
            for s in lifecycle(read_folder(directory), _clock(now), retire_after)
            if s.state in ("retired", "revoked")
        ]
        for kid in gone:
            (directory / f"{kid}.json").unlink(missing_ok=True)
        return gone
