"""Remember recent revocations for the published revocation document, bucketed by time.

Offline verifiers learn of revoked refresh families and "log out everywhere" only from the
signed document jwtauth.resources.revocations serves; this is what it is built from. Every
entry is relevant for one token horizon (no access token issued before it outlives that), so
entries go into one sorted set per time bucket, each key its own hash tag (one key per
command: Cluster-safe) and expiring one horizon after its bucket ends. Reading is one
ZRANGEBYSCORE per live bucket, never a SCAN.

    {prefix}{rev:<bucket>}   sorted set, scored by the event time (epoch seconds):
                             "f:<family_id>:<subject digest>"  a revoked refresh family
                             "s:<subject digest>"              the subject's "not before"

Subjects are stored and published only as `subject_digest` (SHA-256 over issuer and subject),
so neither Redis nor the public document holds a username in clear.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from jwtauth.store.redisclient import RedisClient, checked_prefix, ms, tagged_key, text
from jwtauth.verify.revocations import subject_digest

_BUCKETS_PER_HORIZON = 12


@dataclass
class Snapshot:
    """The revocations still within the horizon: families, per-subject and global not-before."""

    families: dict[str, float] = field(default_factory=dict)  # family id -> revoked at
    # family id -> the digests of every `sub` its user's access tokens may carry (pairwise clients)
    family_subjects: dict[str, tuple[str, ...]] = field(default_factory=dict)
    subjects: dict[str, float] = field(default_factory=dict)  # subject digest -> not before


class RevocationIndex:
    """Record revocations and read back those an unexpired access token could still meet."""

    def __init__(
        self,
        client: RedisClient,
        *,
        issuer: str,
        prefix: str = "jwtauth:",
        horizon: float,
        aliases: Callable[[str], Iterable[str]] | None = None,
    ) -> None:
        """`aliases(username)`: every `sub` its access tokens may carry (OIDC pairwise clients)."""
        if horizon <= 0:
            raise ValueError("horizon must be positive")
        self._redis = client
        self._issuer = issuer
        self._prefix = checked_prefix(prefix)
        self._horizon = float(horizon)
        self._bucket = max(self._horizon / _BUCKETS_PER_HORIZON, 1.0)
        self._aliases = aliases

    def record_family(self, family_id: str, subject: str, *, now: float) -> None:
        """Remember that a family was revoked at `now` (its access tokens die with it)."""
        self._add({f"f:{family_id}:{','.join(self._digests(subject))}": now}, now)

    def record_subject(self, subject: str, *, not_before: float, now: float) -> None:
        """Remember that `subject`'s access tokens issued before `not_before` are revoked."""
        self._add({f"s:{digest}": not_before for digest in self._digests(subject)}, now)

    def snapshot(self, *, now: float) -> Snapshot:
        """Return every revocation recorded within one horizon before `now`."""
        since = now - self._horizon
        first, last = self._bucket_of(since), self._bucket_of(now)
        pipe = self._redis.pipeline(transaction=False)
        for bucket in range(first, last + 1):
            pipe.zrangebyscore(self._key(bucket), since, "+inf", withscores=True)
        snapshot = Snapshot()
        for entries in pipe.execute():
            for member, score in entries:
                _add_entry(snapshot, text(member), float(score))
        return snapshot

    def _digests(self, subject: str) -> list[str]:
        names = {subject, *(self._aliases(subject) if self._aliases is not None else ())}
        return sorted(subject_digest(self._issuer, name) for name in names)

    def _add(self, members: dict[str, float], now: float) -> None:
        bucket = self._bucket_of(now)
        # Alive until the last entry of its bucket is one horizon old.
        ttl = (bucket + 1) * self._bucket + self._horizon - now
        pipe = self._redis.pipeline(transaction=False)
        key = self._key(bucket)
        # GT: a later "not before" for the same subject wins; ZADD GT adds absent members too.
        pipe.zadd(key, members, gt=True)
        pipe.pexpire(key, ms(ttl))
        pipe.execute()

    def _bucket_of(self, when: float) -> int:
        return math.floor(when / self._bucket)

    def _key(self, bucket: int) -> str:
        return tagged_key(self._prefix, "rev", str(bucket))


def _add_entry(snapshot: Snapshot, member: str, score: float) -> None:
    """Fold one stored entry into a snapshot (the latest time wins for repeated entries)."""
    kind, _, rest = member.partition(":")
    if kind == "f":
        family_id, _, digests = rest.partition(":")
        snapshot.families[family_id] = max(score, snapshot.families.get(family_id, score))
        snapshot.family_subjects[family_id] = tuple(digests.split(","))
    elif kind == "s":
        snapshot.subjects[rest] = max(score, snapshot.subjects.get(rest, score))
