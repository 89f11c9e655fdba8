"""The pepper (jwtauth.store.pepper), and state written before it, which keeps working until it expires.

A rolling upgrade meets refresh families with a clear `subject` indexed under the plain
SHA-256 of the subject, code records, device requests and pushed requests in clear JSON. Each
is read as before (the new code writes only sealed values and keyed digests), on fakeredis,
Redis and Cluster alike. Each test first writes the old form the way the old code did.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from jwtauth.cli import keyfolder
from jwtauth.store.codes import CodeRecord, CodeStore, TakeStatus
from jwtauth.store.device import DeviceStore
from jwtauth.store.par import PushedRequests
from jwtauth.store.pepper import PEPPER_FILE, SEALED, Pepper, PepperError, Unsealed, read_pepper
from jwtauth.store.redisclient import tagged_key
from jwtauth.store.refresh import RefreshStore
from jwtauth.store.refresh_records import FamilySpec, RotationStatus
from tests.helpers import PEPPER

NOW = 1_700_000_000.0
USER = "alice@example.com"


def spec() -> FamilySpec:
    return FamilySpec("app", USER, "read", ("https://api",), NOW - 5, NOW, absolute_ttl=3600, idle_ttl=600)


def test_a_family_from_before_the_pepper_rotates_and_is_found_by_its_user(backend: Any) -> None:
    store = RefreshStore(backend.client, pepper=PEPPER, prefix=backend.prefix)
    issued = store.create(spec())
    family = tagged_key(backend.prefix, "f", issued.family_id)
    # What the old code wrote: the subject in clear, the index under the plain SHA-256.
    backend.client.hset(family, "subject", USER)
    keyed = store._subject_key(USER)
    legacy = tagged_key(backend.prefix, "s", hashlib.sha256(USER.encode()).hexdigest())
    backend.client.delete(keyed)
    backend.client.zadd(legacy, {issued.family_id: NOW + 3600})
    backend.client.expire(legacy, 3600)
    assert store.lookup(issued.token, now=NOW + 1).subject == USER  # type: ignore[union-attr]
    rotated = store.rotate(issued.token, client_id="app", now=NOW + 1, idle_ttl=600)
    assert rotated.status is RotationStatus.OK and rotated.family.subject == USER  # type: ignore[union-attr]
    assert store.revoke_all(subject=USER) == 1
    assert store.lookup(rotated.token or "", now=NOW + 2) is None


def test_a_clear_code_record_from_before_the_pepper_is_redeemed(backend: Any) -> None:
    codes = CodeStore(backend.client, pepper=PEPPER, prefix=backend.prefix)
    record = CodeRecord("app", "https://app/cb", "read", USER, None, None, NOW, ("https://api",))
    code = codes.issue(record, ttl=60, now=NOW)
    key = tagged_key(backend.prefix, "c", hashlib.sha256(code.encode()).hexdigest())
    assert backend.client.hget(key, "data").startswith(b"enc1:")
    backend.client.hset(key, "data", json.dumps(dataclasses.asdict(record)))
    taken = codes.take(code, client_id="app", now=NOW + 1)
    assert taken.status is TakeStatus.OK and taken.record == record


def test_a_device_request_approved_before_the_pepper_is_redeemed(backend: Any) -> None:
    devices = DeviceStore(backend.client, pepper=PEPPER, prefix=backend.prefix)
    issued = devices.issue(
        client_id="tv", scope=("read",), audience="https://api", now=NOW, ttl=600, interval=5,
        new_user_code=lambda: "BCDFGHJK",
    )  # fmt: skip
    ref = hashlib.sha256(issued.device_code.encode()).hexdigest()
    backend.client.hset(tagged_key(backend.prefix, "d", ref), mapping={
        "status": "approved", "subject": USER, "auth_time": repr(NOW),
    })  # fmt: skip
    polled = devices.poll(issued.device_code, client_id="tv", now=NOW + 1, step=5)
    assert polled.status == "ok" and polled.subject == USER


def test_a_pushed_request_from_before_the_pepper_is_read(backend: Any) -> None:
    pushed = PushedRequests(backend.client, pepper=PEPPER, prefix=backend.prefix)
    params = {"login_hint": USER, "scope": "read"}
    uri = pushed.push("app", params, ttl=60, now=NOW)
    reference = uri.rpartition(":")[2]
    key = tagged_key(backend.prefix, "par", hashlib.sha256(reference.encode()).hexdigest())
    assert USER.encode() not in backend.client.hget(key, "data")
    backend.client.hset(key, "data", json.dumps(params))
    assert pushed.peek(uri, client_id="app", now=NOW + 1) == params
    assert pushed.take(uri, client_id="app", now=NOW + 1) == params


# The Pepper itself (jwtauth.store.pepper).


def test_a_sealed_value_opens_only_for_its_label_and_record() -> None:
    sealed = PEPPER.seal("a label", USER, "record-1")
    assert sealed.startswith(SEALED) and USER not in sealed
    assert PEPPER.open("a label", sealed, "record-1") == USER
    assert PEPPER.seal("a label", USER, "record-1") != sealed  # a fresh nonce each time
    for label, bound in [("a label", "record-2"), ("other label", "record-1")]:
        with pytest.raises(Unsealed):
            PEPPER.open(label, sealed, bound)
    with pytest.raises(Unsealed):
        Pepper(b"another deployment's pepper 32B!").open("a label", sealed, "record-1")
    with pytest.raises(Unsealed):
        PEPPER.open("a label", sealed[:-4] + "AAAA", "record-1")
    assert PEPPER.open("a label", USER, "record-1") == USER  # clear: written before sealing


def test_digests_and_keys_are_keyed_and_labelled() -> None:
    other = Pepper(b"another deployment's pepper 32B!")
    assert PEPPER.digest("x", USER) != other.digest("x", USER)
    assert PEPPER.digest("x", USER) != PEPPER.digest("y", USER)
    assert PEPPER.digest("x", USER) != hashlib.sha256(USER.encode()).hexdigest()
    assert PEPPER.derive("x") != PEPPER.derive("y") and len(PEPPER.derive("x")) == 32


def test_remembered_digests_are_the_computed_ones_and_stay_bounded() -> None:
    import hmac

    from jwtauth.store import pepper as module

    fresh = Pepper(bytes(range(32)))
    expected = hmac.new(fresh.derive("x"), USER.encode(), hashlib.sha256).hexdigest()
    assert fresh.digest("x", USER) == expected == fresh.digest("x", USER)  # computed, then kept
    assert fresh.digest("y", USER) != expected  # the label is part of what is kept
    for i in range(module._DIGESTS_KEPT + 10):  # made-up names only empty it, never grow it
        fresh.digest("x", f"guess-{i}")
    assert len(fresh._digests) <= module._DIGESTS_KEPT
    assert fresh.digest("x", USER) == expected


def test_the_pepper_file_is_written_once_private_and_read_back(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    assert read_pepper(keys) is None
    keyfolder.ensure(keys, "ES256", retire_after=960)
    path = keys / PEPPER_FILE
    first = path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = read_pepper(keys)
    assert loaded is not None and loaded.digest("x", "y") == Pepper(
        base64.urlsafe_b64decode(first + b"=")
    ).digest("x", "y")
    keyfolder.rotate(keys, "ES256", publish_ahead=0, retire_after=960)
    assert path.read_bytes() == first  # never replaced: Redis depends on it
    path.write_text("not base64!")
    with pytest.raises(PepperError):
        read_pepper(keys)
    # A damaged file is refused, not decoded leniently into some other pepper (a silent reset).
    path.write_bytes(first[:10] + b"*" + first[10:])
    with pytest.raises(PepperError, match="not base64url"):
        read_pepper(keys)
    with pytest.raises(PepperError, match="32 bytes"):
        Pepper(b"short")
