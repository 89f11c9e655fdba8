"""Keep refresh-token families in Redis: rotate, detect replay and reuse, revoke.

A refresh token is `<family_id>.<secret>` (jwtauth.store.refresh_format). One family is one
grant: every rotation replaces the secret and keeps the family. Redis holds only SHA-256
digests of secrets plus a per-rotation nonce, so nothing it stores is usable as a token.

Key layout (every key of one family shares the hash tag `{f:<family_id>}`):

    {prefix}{f:<id>}           hash: client, subject, scope, audience, auth_time, created,
                               abs_exp, idle_exp, gen, cur, prev, nonce, rotated_at,
                               and when set at creation jkt (DPoP key), sid (browser session)
    {prefix}{f:<id>}:used      list: digests of rotated-out secrets, newest first, capped
    {prefix}{f:<id>}:revoked   string: tombstone left by revocation or reuse detection
    {prefix}{s:<hmac(sub)>}    sorted set: family ids of one subject, scored by absolute expiry
                               (for a code's family, written ahead: by its latest possible end;
                               for the grant of a code that starts no family: by its expiry)

The subject is sealed (AES-GCM under a pepper-derived key, bound to the family id) and the
index is keyed by an HMAC under another: a dump of Redis names no user (jwtauth.store.pepper).
Families written before that (a clear `subject`, an index under the plain SHA-256) are still
read until they expire; only the new forms are written.

Successor secrets are HMAC-SHA256(key=presented secret, msg=label|family_id|nonce). The nonce
is random per rotation and stored; the presented secret is not. So a client retrying a
rotation whose response it lost recomputes exactly the same successor (REPLAY), while Redis
alone cannot compute it. The nonce is drawn before Redis is asked, so the candidate successor
travels with the rotation itself: one round trip per rotation. The scripts are in
jwtauth.store.refresh_scripts.

A family an authorization code starts is prepared when the code is issued (`ahead_of_code`:
its id comes from the code, its index entry is written then) and created by the code's take
(`starting`, jwtauth.store.codes), so the exchange too is one round trip. Every code's grant is
named by that id, whether a family starts or not (`ahead_of_grant`): a barring revocation of it
(`bar_key`) kills the code.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from jwtauth.store import refresh_format as fmt
from jwtauth.store import refresh_scripts as lua
from jwtauth.store.limits import Guard, Verdict
from jwtauth.store.pepper import Pepper, Unsealed
from jwtauth.store.redisclient import (
    RedisClient,
    ScriptCall,
    checked_prefix,
    in_order,
    is_standalone,
    ms,
    tagged_key,
    text,
)
from jwtauth.store.refresh_records import (
    CodeAhead,
    FamilyRecord,
    FamilySpec,
    FamilyStart,
    IssuedRefresh,
    NewFamily,
    Rotation,
    RotationStatus,
    new_family,
    record_from_hash,
    record_from_rotation,
)
from jwtauth.store.revocations import RevocationIndex

SUBJECT_LABEL = "refresh subject"
INDEX_LABEL = "subject index"
_KDF_LABEL = b"jwtauth-refresh-v2"
# Successors issued before the generation left the message; still re-derived on REPLAY so a
# client retrying across a rolling deploy gets the successor an older process issued.
_KDF_LABEL_V1 = b"jwtauth-refresh-v1"
log = logging.getLogger("jwtauth.store")
_BAR_MS = ms(600)  # the longest an authorization code lives (settings: lifetimes.authorization_code)


class RefreshStore:
    """Store refresh-token families in Redis (standalone, Sentinel or Cluster)."""

    def __init__(
        self,
        client: RedisClient,
        *,
        pepper: Pepper,
        prefix: str = "jwtauth:",
        grace_seconds: float = 5.0,
        used_history: int = 1000,
        revoked_ttl: float = 3600.0,
        revocations: RevocationIndex | None = None,
    ) -> None:
        if used_history < 1 or grace_seconds < 0 or revoked_ttl <= 0:
            raise ValueError("used_history >= 1, grace_seconds >= 0 and revoked_ttl > 0")
        self._client = client
        self._pepper = pepper
        self._prefix = checked_prefix(prefix)
        self._grace = grace_seconds
        self._history = used_history
        # Longer than any access token: introspection reports the family's access tokens
        # inactive while the tombstone lives (RFC 9700 §4.14.2, RFC 7009 §2.1).
        self._revoked_ms = ms(revoked_ttl)
        # Where revocations are published for offline verifiers (jwtauth.store.revocations).
        self._published = revocations
        self._create = client.register_script(lua.CREATE)
        self._index = client.register_script(lua.INDEX)
        self._rotate = client.register_script(lua.ROTATE)
        self._revoke = client.register_script(lua.REVOKE)
        self._guarded_create = client.register_script(lua.GUARDED_CREATE)
        self._indexed_create = client.register_script(lua.INDEXED_CREATE)
        self._revoked = client.register_script(lua.REVOKED)

    def create(
        self, spec: FamilySpec, *, then: Callable[[str], Sequence[ScriptCall]] | None = None
    ) -> IssuedRefresh:
        """Start a new family and return its first token (generation 1).

        `then(family_id)` names idempotent script calls of another store to run right after
        the family exists, in the same round trip where a pipeline can carry them; their
        replies come back in `IssuedRefresh.after`.
        """
        new = self._draw(spec)
        family_id = new.issued.family_id
        # Index first: a crash in between leaves a dangling index entry (harmless), never a
        # family that "log out everywhere" cannot find.
        extra = tuple(then(family_id)) if then is not None else ()
        index_key, family_key = self._subject_key(spec.subject), self._family_key(family_id)
        steps: tuple[ScriptCall, ...] = (
            ((self._indexed_create, [index_key, family_key], [*new.index_args, *new.create_args]),)
            if is_standalone(self._client)  # on Cluster the two keys live in different slots
            else ((self._index, [index_key], new.index_args), (self._create, [family_key], new.create_args))
        )
        replies = in_order(self._client, *steps, *extra)
        return replace(new.issued, after=tuple(replies[len(steps) :])) if extra else new.issued

    def ahead_of_code(
        self, family_id: str, *, subject: str, auth_time: float, sid: str | None, now: float, bound: float
    ) -> CodeAhead:
        """Return the call that indexes the family a code will start, and the code's fields that create it.

        Written when the code is issued, so its take can create the family in the same atomic
        step (one round trip): a script may touch only the keys it declares, and the exchange
        knows no more than the code. `bound`: the latest the family can end (the code's expiry
        plus the absolute lifetime); the index entry is scored by it. An entry whose code is never
        redeemed names no family: a revocation that bars (`revoke_families`) kills its code.
        """
        sealed = self._pepper.seal(SUBJECT_LABEL, subject, family_id)
        fields = {"fsub": sealed, "fexp": repr(bound), "fat": repr(float(auth_time)), "fsid": sid or ""}
        return CodeAhead(calls=(self._indexing(family_id, subject, now, bound),), fields=fields)

    def ahead_of_grant(self, grant_id: str, *, subject: str, now: float, until: float) -> CodeAhead:
        """Return the call that indexes a code whose client may not refresh, until `until` (its expiry).

        No family will start, but "log out everywhere" (`revoke_all`) must find the code's grant
        to bar it, so the code dies. The entry goes with the code's life: no index grows by it.
        """
        return CodeAhead(calls=(self._indexing(grant_id, subject, now, until),), fields={})

    def _indexing(self, family_id: str, subject: str, now: float, until: float) -> ScriptCall:
        return (self._index, [self._subject_key(subject)], [repr(now), repr(until), family_id])

    def starting(
        self, family_id: str, *, now: float, lifetimes: tuple[float, float], jkt: str | None
    ) -> FamilyStart:
        """Draw the first secret of the family a code's take creates (`ahead_of_code`'s).

        `lifetimes`: idle and absolute; `jkt`: the DPoP key a public client's family is bound to.
        """
        secret = fmt.new_secret()
        abs_exp = now + lifetimes[1]
        idle_exp = min(now + lifetimes[0], abs_exp)
        args = [repr(now), repr(abs_exp), repr(idle_exp), fmt.digest(secret), jkt or "", family_id]
        issued = IssuedRefresh(token=fmt.token(family_id, secret), family_id=family_id, generation=1)
        return FamilyStart(key=self._family_key(family_id), args=args, issued=issued)

    def bar_key(self, family_id: str) -> str:
        """Return the key a barring revocation (`revoke_families`) sets for a family not yet started.

        A code whose grant is named by `family_id` (CodeStore.family_id) is dead once it is set.
        """
        return self._family_keys(family_id)[2]

    def create_guarded(self, spec: FamilySpec, guard: Guard) -> tuple[IssuedRefresh | None, Verdict] | None:
        """Start a family unless `guard` says locked, in one round trip; None if unsupported.

        Returns the family (None while locked: nothing was written) and the guard's verdict.
        Only on standalone Redis and Sentinel: on Cluster the counters and the family live in
        different slots, which one script may not touch; the caller checks, then `create`s.
        """
        if not is_standalone(self._client):
            return None
        new = self._draw(spec)
        family_key = self._family_key(new.issued.family_id)
        keys = [self._subject_key(spec.subject), family_key, guard.mark, *guard.keys]
        reply = self._guarded_create(keys=keys, args=[*guard.args, *new.index_args, *new.create_args])
        verdict = guard.verdict(reply)
        return (None if verdict[0] is not None else new.issued), verdict

    def rotate(
        self, token: str, *, client_id: str, now: float, idle_ttl: float, jkt: str | None = None
    ) -> Rotation:
        """Exchange the current secret for its successor, or detect replay and reuse.

        `jkt`: the request's DPoP key; a family bound to another key (or to one, without
        it) answers WRONG_KEY and changes nothing.
        """
        if idle_ttl <= 0:
            raise ValueError("idle_ttl must be positive")
        parsed = fmt.parse(token)
        if parsed is None:
            return Rotation(RotationStatus.UNKNOWN)
        family_id, secret = parsed
        # The nonce is drawn first so the candidate successor goes with the one script call;
        # Lua has no SHA-256, and Redis must never see the presented secret itself.
        nonce = secrets.token_hex(16)
        successor = _successor(secret, family_id, nonce)
        reply = self._rotate(
            keys=self._family_keys(family_id),
            args=[
                fmt.digest(secret),
                client_id,
                repr(now),
                repr(self._grace),
                repr(idle_ttl),
                fmt.digest(successor),
                nonce,
                str(self._history - 1),
                str(self._revoked_ms),
                f"reuse {now!r}",
                jkt or "",
            ],
        )
        status = RotationStatus(text(reply[0]))
        if status in (RotationStatus.OK, RotationStatus.REPLAY):
            subject = self._opened(family_id, text(reply[3]))
            if subject is None:  # sealed under another pepper, or moved here from another family
                return Rotation(RotationStatus.UNKNOWN, family_id)
            family = record_from_rotation(family_id, client_id, reply, subject)
            if status is RotationStatus.OK:
                return Rotation(status, family_id, fmt.token(family_id, successor), family)
            # RFC 9700 §4.14.2 allows a short grace period for a lost response (REPLAY): hand back
            # the successor already issued (derived again, identical), never a second live one.
            again = _replayed(secret, family_id, family.generation, text(reply[10]), text(reply[11]))
            return Rotation(status, family_id, fmt.token(family_id, again), family)
        if status is RotationStatus.REUSE:
            self._publish(family_id, text(reply[1]), now=now)
        return Rotation(status, family_id)

    def lookup(self, token: str, *, now: float) -> FamilyRecord | None:
        """Return the family if `token` carries its current secret and it has not expired."""
        parsed = fmt.parse(token)
        if parsed is None:
            return None
        family_id, secret = parsed
        fields = self._client.hgetall(self._family_key(family_id))
        if not fields or not hmac.compare_digest(text(fields[b"cur"]), fmt.digest(secret)):
            return None
        subject = self._opened(family_id, text(fields[b"subject"]))
        if subject is None:
            return None
        record = record_from_hash(family_id, fields, subject)
        if now >= record.absolute_expiry or now >= record.idle_expiry:
            return None
        return record

    def revoke(self, family_id_or_token: str, *, client_id: str | None = None, now: float) -> bool:
        """Delete a family and leave a tombstone; return whether a family was revoked.

        A token must carry a secret the family issued (current or rotated-out), so a guessed
        family id with a made-up secret revokes nothing. A bare family id is for callers that
        already hold proof (an access token's family claim, an administrator). With
        `client_id`, only the owner may revoke (RFC 7009 §2.1): another client is refused.
        """
        if "." in family_id_or_token:
            parsed = fmt.parse(family_id_or_token)
            if parsed is None:
                return False
            family_id, digest = parsed[0], fmt.digest(parsed[1])
        elif fmt.FAMILY_ID.fullmatch(family_id_or_token):
            family_id, digest = family_id_or_token, ""
        else:
            return False
        return self._revoke_family(
            family_id, digest=digest, client_id=client_id, now=now, reason=f"revoked {now!r}"
        )

    def is_revoked(self, family_id: str) -> bool:
        """Return whether the family was revoked recently enough that its tombstone lives."""
        if not fmt.FAMILY_ID.fullmatch(family_id):
            return False
        return bool(self._revoked(keys=[self._family_keys(family_id)[2]]))

    def revoke_all(self, *, subject: str | None = None, client_id: str | None = None) -> int:
        """Revoke every family of a subject and/or client ("log out everywhere"); count them.

        With a subject, the per-subject index is read: cost is that subject's families (and
        the entries of its codes not yet redeemed, which a subject alone also bars: see
        `revoke_families`), revoked in one round trip where a pipeline carries it.
        With only a client, the keyspace is SCANned for family hashes: cost is every key under
        the prefix, so keep that for incidents (a compromised client). On Redis Cluster,
        redis-py's `RedisCluster.scan_iter` runs SCAN on every primary, so no family is missed.
        """
        if subject is None and client_id is None:
            raise ValueError("revoke_all needs a subject, a client_id or both")
        if subject is not None:
            family_ids = sorted({
                text(member) for index in self._subject_keys(subject)
                for member in self._client.zrange(index, 0, -1)
            })  # fmt: skip
        else:
            pattern = _glob_escape(self._prefix) + "{f:*}"
            start = len(self._prefix) + 3
            family_ids = [
                text(key)[start:-1] for key in self._client.scan_iter(match=pattern, count=1000, _type="hash")
            ]
        # A subject's every grant ends: an entry written ahead of a code's grant is barred, so
        # the code dies too, and its entry can go. Not for one client's: the entry names no client.
        bar = subject is not None and client_id is None
        revoked = self.revoke_families(
            family_ids, now=time.time(), bar=bar, client_id=client_id, reason="revoked"
        )
        gone = family_ids if bar else revoked
        if subject is not None and gone:
            for index in self._subject_keys(subject):  # one key per command: Cluster-safe
                self._client.zrem(index, *gone)
        return len(revoked)

    def _revoke_family(
        self, family_id: str, *, digest: str, client_id: str | None, now: float, reason: str
    ) -> bool:
        reply = self._revoke(
            keys=self._family_keys(family_id),
            args=self._revoke_args(digest, client_id, reason, bar=False),
        )
        if not reply:
            return False
        self._publish(family_id, text(reply[1]), now=now)
        return True

    def revoke_families(
        self, family_ids: Sequence[str], *, now: float, bar: bool, client_id: str | None = None, reason: str
    ) -> list[str]:
        """Revoke these families, in one round trip where a pipeline carries it; return the revoked.

        `bar`: a family that does not exist yet gets its tombstone too, so the code whose grant
        it names (the only way an index or a session names a family before it exists, if ever)
        is dead. Only for a caller that ends the whole grant: a user's every session, or one session.
        """
        ids = [family_id for family_id in family_ids if fmt.FAMILY_ID.fullmatch(family_id)]
        args = self._revoke_args("", client_id, reason, bar=bar)
        calls = [(self._revoke, self._family_keys(family_id), args) for family_id in ids]
        revoked = []
        for family_id, reply in zip(ids, in_order(self._client, *calls) if calls else [], strict=True):
            if reply and int(reply[0]) == 1:
                self._publish(family_id, text(reply[1]), now=now)
                revoked.append(family_id)
        return revoked

    def _revoke_args(self, digest: str, client_id: str | None, reason: str, *, bar: bool) -> list[str]:
        # A bar must outlive the code it stops (codes live at most 600 s), whatever the horizon.
        ttl = max(self._revoked_ms, _BAR_MS) if bar else self._revoked_ms
        return [
            "1" if digest else "0", digest, "0" if client_id is None else "1", client_id or "",
            str(ttl), reason, "1" if bar else "0",
        ]  # fmt: skip

    def _publish(self, family_id: str, stored_subject: str, *, now: float) -> None:
        """Record a revoked family for the revocation document, naming its subject's digests."""
        if self._published is None:
            return
        try:
            subject = self._pepper.open(SUBJECT_LABEL, stored_subject, family_id)
        except Unsealed:
            log.warning("revoked family %s: its subject does not open, not published", family_id)
            return
        self._published.record_family(family_id, subject, now=now)

    def _opened(self, family_id: str, stored_subject: str) -> str | None:
        """Return a family's subject opened; None if it does not open for this family.

        Opened before the record is built, so the record is built once (a dataclasses.replace
        of a built one costs twice a build, on every refresh).
        """
        try:
            return self._pepper.open(SUBJECT_LABEL, stored_subject, family_id)
        except Unsealed:
            # Another pepper (a replaced keys/pepper, a worker with another folder) or a moved
            # value: the grant is lost either way, so the operator must hear of it.
            log.warning("refresh family %s: its subject does not open under this pepper", family_id)
            return None

    def _draw(self, spec: FamilySpec) -> NewFamily:
        """Draw a new family whose stored subject is sealed to it."""
        return new_family(spec, lambda family_id: self._pepper.seal(SUBJECT_LABEL, spec.subject, family_id))

    def _family_key(self, family_id: str) -> str:
        return tagged_key(self._prefix, "f", family_id)

    def _family_keys(self, family_id: str) -> list[str]:
        family = self._family_key(family_id)
        return [family, f"{family}:used", f"{family}:revoked"]

    def _subject_key(self, subject: str) -> str:
        # Keyed: the key name is visible to anyone who can SCAN; the subject must not be guessable.
        return tagged_key(self._prefix, "s", self._pepper.digest(INDEX_LABEL, subject))

    def _subject_keys(self, subject: str) -> tuple[str, str]:
        """Return the subject's index key, then the unkeyed one of families from before the pepper."""
        legacy = tagged_key(self._prefix, "s", hashlib.sha256(subject.encode()).hexdigest())
        return self._subject_key(subject), legacy


def _replayed(secret: bytes, family_id: str, generation: int, nonce: str, current: str) -> bytes:
    """Re-derive the successor already issued for `secret`; it must be the family's current one."""
    again = _successor(secret, family_id, nonce)
    if hmac.compare_digest(fmt.digest(again), current):
        return again
    # Issued before this derivation (rolling deploy): the generation was in the message.
    legacy = _successor_v1(secret, family_id, generation, nonce)
    if hmac.compare_digest(fmt.digest(legacy), current):
        return legacy
    raise RuntimeError("refresh family state is inconsistent: replay mismatch")


def _successor(secret: bytes, family_id: str, nonce: str) -> bytes:
    """Derive the secret that follows `secret`; only a holder of `secret` can compute it."""
    message = b"|".join((_KDF_LABEL, family_id.encode(), nonce.encode()))
    return hmac.new(secret, message, hashlib.sha256).digest()


def _successor_v1(secret: bytes, family_id: str, generation: int, nonce: str) -> bytes:
    """Derive a successor the way releases before the one-round-trip rotation did."""
    message = b"|".join((_KDF_LABEL_V1, family_id.encode(), str(generation).encode(), nonce.encode()))
    return hmac.new(secret, message, hashlib.sha256).digest()


def _glob_escape(pattern: str) -> str:
    return re.sub(r"([\\*?\[\]])", r"\\\1", pattern)
