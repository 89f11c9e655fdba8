"""The records of jwtauth.store.refresh: what a family stands for, what its calls return, and a
new family drawn from its spec (id, first secret, the ARGV that store it)."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jwtauth.store import refresh_format as fmt
from jwtauth.store.redisclient import ScriptCall, ms, text


class RotationStatus(enum.Enum):
    """Outcome of presenting a refresh token for rotation."""

    OK = "ok"
    REPLAY = "replay"
    REUSE = "reuse"
    WRONG_CLIENT = "wrong_client"
    WRONG_KEY = "wrong_key"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class FamilySpec:
    """Describe the grant a new family stands for and how long it may live."""

    client_id: str
    subject: str
    scope: str
    audience: tuple[str, ...]
    auth_time: float
    now: float
    absolute_ttl: float
    idle_ttl: float
    jkt: str | None = None  # the DPoP key a public client's family is bound to (RFC 9449 §5)
    # The browser session the grant was made in: an id_token issued on refresh names it again
    # (OpenID Connect Core §12.2, Back-Channel Logout §2.1).
    sid: str | None = None

    def __post_init__(self) -> None:
        if self.absolute_ttl <= 0 or self.idle_ttl <= 0:
            raise ValueError("absolute_ttl and idle_ttl must be positive")
        if isinstance(self.audience, str):
            raise TypeError("audience is a sequence of strings, not a string")


@dataclass(frozen=True)
class FamilyRecord:
    """The grant a refresh-token family stands for, as of its current generation."""

    family_id: str
    client_id: str
    subject: str
    scope: str
    audience: tuple[str, ...]
    auth_time: float
    created: float
    absolute_expiry: float
    idle_expiry: float
    generation: int
    sid: str | None = None


@dataclass(frozen=True)
class IssuedRefresh:
    """A new family's first refresh token."""

    token: str
    family_id: str
    generation: int
    # The replies of the steps `create` ran after the family in the same round trip (`then`).
    after: tuple[Any, ...] = ()


@dataclass(frozen=True)
class FamilyStart:
    """A family a code's take creates in its own step (codes.CodeStore.take's `start`)."""

    key: str  # the family's hash
    args: list[str]  # refresh_scripts.start_family's ARGV
    issued: IssuedRefresh  # its first token, valid once the take says it started


@dataclass(frozen=True)
class CodeAhead:
    """What a code's issue writes ahead of its grant and the family its exchange may start.

    RefreshStore.ahead_of_code, or ahead_of_grant (no family, no fields) for a client that may not refresh.
    """

    calls: tuple[ScriptCall, ...]  # run in the round trip, before the code exists
    fields: dict[str, str]  # the code hash's fields start_family reads


@dataclass(frozen=True)
class Rotation:
    """Result of `RefreshStore.rotate`; `token` and `family` are set for OK and REPLAY."""

    status: RotationStatus
    family_id: str | None = None
    token: str | None = None
    family: FamilyRecord | None = None


def record_from_hash(family_id: str, fields: dict[Any, Any], subject: str) -> FamilyRecord:
    """Build the family from its hash as HGETALL returns it, with its `subject` opened."""

    def field(name: str) -> str:
        return text(fields[name.encode()])

    return FamilyRecord(
        family_id=family_id,
        client_id=field("client"),
        subject=subject,
        scope=field("scope"),
        audience=tuple(json.loads(field("audience"))),
        auth_time=float(field("auth_time")),
        created=float(field("created")),
        absolute_expiry=float(field("abs_exp")),
        idle_expiry=float(field("idle_exp")),
        generation=int(field("gen")),
        sid=text(fields[b"sid"]) if b"sid" in fields else None,
    )


def record_from_rotation(family_id: str, client_id: str, reply: Sequence[Any], subject: str) -> FamilyRecord:
    """Build the family as the rotation script returned it (OK and REPLAY share the layout).

    `subject`: reply[3], which is sealed, opened by the caller.
    """
    return FamilyRecord(
        family_id=family_id,
        client_id=client_id,  # the script refused any other client
        subject=subject,
        scope=text(reply[4]),
        audience=tuple(json.loads(text(reply[5]))),
        auth_time=float(text(reply[6])),
        created=float(text(reply[7])),
        absolute_expiry=float(text(reply[8])),
        idle_expiry=float(text(reply[2])),
        generation=int(text(reply[1])),
        sid=None if reply[9] is None else text(reply[9]),  # families from before sid: none
    )


@dataclass(frozen=True)
class NewFamily:
    """A family drawn but not yet stored: its first token and the ARGV that store it."""

    issued: IssuedRefresh
    index_args: list[str]  # refresh_scripts.INDEX's
    create_args: list[str]  # refresh_scripts.CREATE's


def new_family(spec: FamilySpec, sealed_subject: Callable[[str], str]) -> NewFamily:
    """Draw a family id and first secret; return them with the ARGV that store the family."""
    family_id, secret = fmt.new_family()
    abs_exp = spec.now + spec.absolute_ttl
    idle_exp = min(spec.now + spec.idle_ttl, abs_exp)
    fields = {
        "client": spec.client_id,
        "subject": sealed_subject(family_id),
        "scope": spec.scope,
        "audience": json.dumps(list(spec.audience)),
        "auth_time": repr(float(spec.auth_time)),
        "created": repr(float(spec.now)),
        "abs_exp": repr(abs_exp),
        "idle_exp": repr(idle_exp),
        "gen": "1",
        "cur": fmt.digest(secret),
    }
    if spec.jkt is not None:
        fields["jkt"] = spec.jkt
    if spec.sid is not None:
        fields["sid"] = spec.sid
    create_args: list[str] = [str(ms(idle_exp - spec.now))]
    for name, value in fields.items():
        create_args += [name, value]
    issued = IssuedRefresh(token=fmt.token(family_id, secret), family_id=family_id, generation=1)
    return NewFamily(issued, [repr(spec.now), repr(abs_exp), family_id], create_args)
