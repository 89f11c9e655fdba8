"""Tests for jwtauth.store.traced: a CLIENT span per round trip, named, never naming a key."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
import redis
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from jwtauth.app import create_app
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from jwtauth.store import FamilySpec, RefreshStore
from jwtauth.store.connection import connect
from jwtauth.store.limits import FailureLimiter
from jwtauth.store.redisclient import LazyCluster, is_standalone
from jwtauth.store.refresh_scripts import REVOKED
from jwtauth.store.traced import TracedStore, script_name
from tests.helpers import PEPPER
from tests.support import REDIS_URL, need

NOW = 1_700_000_000.0
SPEC = FamilySpec(
    client_id="client-a", subject="alice@example.com", scope="read", audience=("https://api.example.com",),
    auth_time=NOW, now=NOW, absolute_ttl=3600.0, idle_ttl=600.0,
)  # fmt: skip


class Recorder:
    """A tracer into memory, and the spans it finished."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = provider.get_tracer("test")

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def attributes(self) -> list[dict[str, Any]]:
        return [dict(s.attributes or {}) for s in self.spans()]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def test_every_script_an_app_registers_is_named_by_its_constant(settings: Settings, keyring: KeyRing) -> None:
    registered: list[str | bytes] = []

    class Recording(fakeredis.FakeRedis):
        def register_script(self, script: Any) -> Any:
            registered.append(script)
            return super().register_script(script)

    create_app(settings, keyring, Recording(server=fakeredis.FakeServer()))
    names = {script_name(body) for body in registered}
    assert "script" not in names  # the fallback: a body no jwtauth constant holds
    assert len(names) == len(set(registered))  # one name per script
    assert {"codes.take", "refresh_scripts.rotate", "limits.acquire", "replay.first_use"} <= names


def test_a_body_held_by_no_constant_is_just_a_script() -> None:
    assert script_name("return 1 -- nowhere in jwtauth") == "script"


def test_a_script_call_is_one_client_span_naming_the_script_not_its_keys(recorder: Recorder) -> None:
    store = RefreshStore(
        TracedStore(fakeredis.FakeRedis(), recorder.tracer), pepper=PEPPER, prefix="jwtauth-test:"
    )
    issued = store.create(SPEC)
    recorder.exporter.clear()
    store.rotate(issued.token, client_id="client-a", now=NOW + 1, idle_ttl=600.0)
    (span,) = recorder.spans()
    assert span.kind == SpanKind.CLIENT and span.name == "EVALSHA refresh_scripts.rotate"
    assert dict(span.attributes or {}) == {
        "db.system": "redis",
        "db.system.name": "redis",
        "db.operation.name": "EVALSHA",
        "db.stored_procedure.name": "refresh_scripts.rotate",
    }


def test_a_pipeline_is_one_span_listing_its_scripts(recorder: Recorder) -> None:
    client = TracedStore(fakeredis.FakeRedis(), recorder.tracer)
    store = RefreshStore(client, pepper=PEPPER, prefix="jwtauth-test:")
    # Another store's script in the same round trip (as a code exchange links its session).
    revoked = client.register_script(REVOKED)
    then = lambda family_id: [(revoked, ["jwtauth-test:{f:" + family_id + "}:revoked"], [])]  # noqa: E731
    store.create(SPEC, then=then)  # the first run loads the scripts (NOSCRIPT, then one by one)
    recorder.exporter.clear()
    store.create(SPEC, then=then)
    (span,) = recorder.spans()
    assert span.name == "PIPELINE EVALSHA"
    attributes = dict(span.attributes or {})
    assert attributes["db.operation.batch.size"] == 2
    assert attributes["db.stored_procedure.name"] == "refresh_scripts.indexed_create,refresh_scripts.revoked"


def test_a_plain_command_is_a_span_named_by_the_command(recorder: Recorder) -> None:
    client = TracedStore(fakeredis.FakeRedis(), recorder.tracer)
    client.set("jwtauth-test:{u:alice@example.com}", b"v", px=1000)
    assert client.get("jwtauth-test:{u:alice@example.com}") == b"v"
    assert [s.name for s in recorder.spans()] == ["SET", "GET"]
    assert "alice" not in repr(recorder.attributes())


def test_the_wrapper_keeps_the_standalone_strategies(recorder: Recorder) -> None:
    client = fakeredis.FakeRedis()
    traced = TracedStore(client, recorder.tracer)
    assert is_standalone(client) and is_standalone(traced)
    limiter = FailureLimiter(traced, pepper=PEPPER, prefix="jwtauth-test:", max_failures=5, window_seconds=60)
    store = RefreshStore(traced, pepper=PEPPER, prefix="jwtauth-test:")
    # The password grant's one round trip: the family starts only while the counters allow it.
    assert store.create_guarded(SPEC, limiter.guard(["u|alice"], now=NOW, remember=("d", 60))) is not None


def test_a_failed_call_marks_its_span_with_the_error_type_only(recorder: Recorder) -> None:
    server = fakeredis.FakeServer()
    store = RefreshStore(
        TracedStore(fakeredis.FakeRedis(server=server), recorder.tracer), pepper=PEPPER, prefix="p:"
    )
    server.connected = False
    with pytest.raises(Exception, match="connect") as raised:
        store.create(SPEC)
    (span,) = recorder.spans()
    assert span.status.status_code == StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == type(raised.value).__qualname__
    assert not span.events and str(raised.value) not in (span.status.description or "")


@pytest.mark.redis
def test_on_a_real_redis_the_lean_script_path_is_traced(recorder: Recorder) -> None:
    client = connect(REDIS_URL)  # jwtauth's own client: scripts run without redis-py's command layers
    try:
        client.ping()
    except redis.RedisError as exc:
        need(False, f"no Redis at {REDIS_URL}: {exc}")
    store = RefreshStore(TracedStore(client, recorder.tracer), pepper=PEPPER, prefix="jwtauth-test:traced:")
    issued = store.create(SPEC)
    recorder.exporter.clear()
    assert store.rotate(issued.token, client_id="client-a", now=NOW + 1, idle_ttl=600.0).status.name == "OK"
    assert [s.name for s in recorder.spans()] == ["EVALSHA refresh_scripts.rotate"]
    # Clean up what this test wrote: the family, its index and the tombstone revoking leaves.
    store.revoke_all(subject=SPEC.subject)
    for key in client.scan_iter(match="jwtauth-test:traced:*"):
        client.delete(key)


def test_asking_whether_a_lazy_cluster_is_standalone_does_not_connect_it(recorder: Recorder) -> None:
    def build() -> Any:
        raise AssertionError("a type check must not connect the cluster")

    cluster = LazyCluster(build)
    assert not is_standalone(cluster) and not is_standalone(TracedStore(cluster, recorder.tracer))
