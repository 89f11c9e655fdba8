"""No secret and no username in any span (the otel extra): every flow of the log test, traced.

Spans leave the machine for a tracing backend that more people read than the logs, so they
carry less: no key (keys hold digests of codes and tokens, and usernames), no command
argument, no exception text, no path a client chose, no query, no body.
"""

from __future__ import annotations

import fakeredis

from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from tests.helpers import USER, Clock
from tests.security.test_logs import run_every_flow
from tests.tracekit import everything_said, traced

USERNAMES = [USER, "nobody@example.com"]


def test_no_secret_or_username_reaches_any_span(settings: Settings, keyring: KeyRing, clock: Clock) -> None:
    app = traced(settings, keyring, clock=clock)
    secrets: list[str] = []
    run_every_flow(app.http, clock, secrets)
    spans = app.exporter.get_finished_spans()
    # Not vacuous: the flows made requests and store calls, and the spans say what they were.
    assert len(app.requests()) > 30 and len(app.store_calls()) > 30
    said = everything_said(list(spans))
    assert "POST /api/v1/tokens" in said and "refresh_scripts.rotate" in said
    leaked = sorted({s for s in [*secrets, *USERNAMES, settings.redis_prefix] if s and s in said})
    assert not leaked, f"in spans: {leaked!r}"


def test_no_key_or_argument_reaches_a_store_span(settings: Settings, keyring: KeyRing, clock: Clock) -> None:
    app = traced(settings, keyring, clock=clock)
    run_every_flow(app.http, clock, [])
    stored = {key.decode() for key in fakeredis.FakeRedis(server=app.server).scan_iter()}
    assert len(stored) > 5
    said = everything_said(app.store_calls())
    for span in app.store_calls():
        assert set(span.attributes or {}) <= {
            "db.system", "db.system.name", "db.operation.name", "db.stored_procedure.name",
            "db.operation.batch.size", "error.type",
        }  # fmt: skip
    assert not [key for key in stored if key in said]
