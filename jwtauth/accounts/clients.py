"""Client registry and client authentication (RFC 6749 §2.3)."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import unquote_plus

from jwtauth.accounts.assertions import ASSERTION_TYPE, AssertionChecker, claimed_client, refused
from jwtauth.accounts.client_documents import ClientDocuments, DocumentRefused
from jwtauth.accounts.client_limits import ClientAuthGate
from jwtauth.accounts.hashing import SecretChecker, typical_parameters
from jwtauth.config.clients import Client
from jwtauth.errors import InvalidClient, InvalidRequest

MAX_CREDENTIAL = 512


def _basic_credentials(header: str) -> tuple[str, str]:
    """Decode `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1)."""
    _, _, value = header.strip().partition(" ")
    value = value.strip()
    if not value or len(value) > 4 * MAX_CREDENTIAL:
        raise InvalidClient("malformed Basic credentials")
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidClient("malformed Basic credentials") from None
    raw_id, colon, raw_secret = decoded.partition(":")
    if not colon:
        raise InvalidClient("malformed Basic credentials")
    try:
        # §2.3.1: id and secret are form-urlencoded before joining, so ':' etc. can be in them.
        client_id = unquote_plus(raw_id, errors="strict")
        secret = unquote_plus(raw_secret, errors="strict")
    except UnicodeDecodeError:
        raise InvalidClient("malformed Basic credentials") from None
    if "\x00" in client_id or "\x00" in secret:
        # Appendix A.1/A.2: ids and secrets are visible characters. A NUL must not reach scrypt,
        # whose HMAC zero-pads keys: "secret\0" would otherwise pass as "secret".
        raise InvalidClient("malformed Basic credentials")
    return client_id, secret


class ClientRegistry:
    """Look up configured clients and authenticate them at the token endpoint."""

    def __init__(
        self,
        clients: Iterable[Client],
        checker: SecretChecker,
        documents: ClientDocuments | None = None,
        assertions: AssertionChecker | None = None,
        gate: ClientAuthGate | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._checker, self._clock = checker, clock
        self._documents = documents
        self._assertions = assertions
        self._gate = gate  # counts attempts that would cost scrypt (issue 18)
        self.replace(clients)

    def replace(self, clients: Iterable[Client]) -> None:
        """Swap in a new set of configured clients (a settings reload); requests see one or the other."""
        table = {c.client_id: c for c in clients}
        # An unknown client costs what a wrong secret for a typical known client costs.
        like = typical_parameters(c.secret_hash for c in table.values() if c.secret_hash)
        self._state = (table, like)  # one assignment: a request never sees half of each

    def configured(self) -> tuple[Client, ...]:
        """Return the configured clients (not the ones metadata documents describe)."""
        return tuple(self._state[0].values())

    @property
    def table(self) -> Mapping[str, Client]:
        """Return the configured clients by id: a new mapping after each reload (accounts/live.py)."""
        return self._state[0]

    def get(self, client_id: str | None) -> Client | None:
        """Return the client with this id, or None."""
        try:
            return self.find(client_id)
        except DocumentRefused:
            return None

    def find(self, client_id: str | None) -> Client | None:
        """Return the configured client, or the one a metadata document describes.

        None for an unknown id; DocumentRefused (with a reason to show) for a URL id whose
        document cannot be used.
        """
        if not client_id:
            return None
        client = self._state[0].get(client_id)
        if client is None and self._documents is not None and self._documents.handles(client_id):
            return self._documents.client(client_id)
        return client

    def authenticate(
        self, authorization: str | None, params: Mapping[str, str], client_addr: str | None = None
    ) -> Client:
        """Return the client these credentials prove, or raise InvalidClient/InvalidRequest.

        `client_addr`: where the request came from, for the failed-authentication counters.
        """
        body_id, body_secret = params.get("client_id"), params.get("client_secret")
        if "client_assertion" in params or "client_assertion_type" in params:
            if authorization or body_secret is not None:
                # §2.3: the client MUST NOT use more than one authentication method per request.
                raise InvalidRequest("send one client authentication: an assertion, Basic or a secret")
            return self._check_assertion(params)
        if authorization and authorization[:6].lower() == "basic ":
            if body_secret is not None:
                # §2.3: the client MUST NOT use more than one authentication method per request.
                raise InvalidRequest("send client credentials once: Basic header or body, not both")
            client_id, secret = _basic_credentials(authorization)
            if body_id is not None and body_id != client_id:
                raise InvalidRequest("client_id in the body differs from the Basic credentials")
            return self._check_secret(client_id, secret, client_addr)
        if authorization:
            raise InvalidClient("unsupported authentication scheme; use Basic")
        if body_id is None:
            raise InvalidClient("client authentication required")
        if body_secret is None:
            client = self.get(body_id)
            if client is not None and client.public:
                return client  # §2.1: a public client only identifies itself
            raise InvalidClient("client authentication failed")
        return self._check_secret(body_id, body_secret, client_addr)

    def _check_assertion(self, params: Mapping[str, str]) -> Client:
        """Return the client a private_key_jwt assertion proves (RFC 7523 §2.2, RFC 7521 §4.2)."""
        assertion = params.get("client_assertion")
        if params.get("client_assertion_type") != ASSERTION_TYPE or assertion is None:
            raise InvalidClient(f"client_assertion_type must be {ASSERTION_TYPE} with a client_assertion")
        client_id = claimed_client(assertion)
        body_id = params.get("client_id")
        if body_id is not None and body_id != client_id:
            raise refused("client_id differs from the assertion's sub")  # RFC 7521 §4.2
        client = self._state[0].get(client_id)  # keys are registered: never a metadata document
        if client is None or not client.uses_keys or self._assertions is None:
            raise refused("unknown client, or one without registered keys")
        return self._assertions.check(client, assertion)

    def _check_secret(self, client_id: str, secret: str, client_addr: str | None) -> Client:
        if len(client_id) > MAX_CREDENTIAL or len(secret) > MAX_CREDENTIAL:
            raise InvalidClient("client authentication failed")
        table, like = self._state
        client = table.get(client_id)
        stored = client.secret_hash if client is not None else None
        if client is not None and stored is not None and self._checker.proven(stored, secret):
            return client  # proven before in this process: one HMAC, nothing to gate or count
        # Attempts that would cost scrypt are counted first and refused past the limit, before
        # any hashing; unknown ids cost what the typical known one does, so they are gated alike.
        costly = self._gate is not None and not self._checker.cheap(stored, secret, like=like)
        counted = self._gate.enter(client_id, client_addr) if costly and self._gate else []
        # One path for unknown clients, public clients and wrong secrets: same answer, same
        # time (the checker hashes against a dummy when there is no stored hash).
        ok = self._checker.check(stored, secret, like=like)  # always run: unknown ids cost the same
        if client is None or not (ok or self._previous_secret(client, secret)):
            raise InvalidClient("client authentication failed")
        if counted and self._gate:
            self._gate.succeeded(counted)
        return client

    def _previous_secret(self, client: Client, secret: str) -> bool:
        """Return whether `secret` is the client's old one, still inside its rotation window."""
        until = client.previous_secret_not_after
        if client.previous_secret_hash is None or until is None or self._clock() >= until:
            return False
        return self._checker.check(client.previous_secret_hash, secret)
