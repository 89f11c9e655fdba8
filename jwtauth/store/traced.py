"""The store seen through OpenTelemetry: one CLIENT span per Redis round trip (the `otel` extra).

create_app wraps the store's client in a `TracedStore` only when it is given a tracer, so
without tracing no store call pays for a span and this module (and opentelemetry) is never
imported. Every store reaches Redis through its client's scripts, its commands or its
pipelines; the wrapper traces each at the one point all three pass: the client object.

A span names what ran, never what it ran on: `db.system` `redis`, the command
(`db.operation.name`) and, for a script, its name (`db.stored_procedure.name`, the name of the
constant holding its Lua body, e.g. `codes.take`). Keys and arguments hold digests of codes and
tokens, usernames and client ids: no span carries them. A failed call marks its span with the
exception's type only (`error.type`): a Redis error's text may quote a key.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

_BASE = {"db.system": "redis", "db.system.name": "redis"}  # the old and the current semconv key


def script_name(body: str | bytes) -> str:
    """Return the name of the constant holding `body` in a jwtauth module, as `module.constant`.

    The stores register scripts by body; naming each by its constant means there is no second
    list of names to keep in step. Scripts are registered while an app is built, not per request.
    """
    for module_name in sorted(sys.modules):
        module = sys.modules[module_name]
        if not module_name.startswith("jwtauth.") or module is None:
            continue
        for constant, value in vars(module).items():
            if constant.lstrip("_").isupper() and isinstance(value, str | bytes) and value == body:
                return f"{module_name.rsplit('.', 1)[-1]}.{constant.strip('_').lower()}"
    return "script"


class _Spans:
    """Start and end the spans of one traced client."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self.names: dict[str, str] = {}  # script digest -> name, for EVALSHA in a pipeline

    def run(self, name: str, attributes: dict[str, Any], call: Callable[[], Any]) -> Any:
        """Run `call` inside a CLIENT span, marking the span with the type of what it raises."""
        with self.tracer.start_as_current_span(
            name, kind=SpanKind.CLIENT, attributes={**_BASE, **attributes},
            record_exception=False, set_status_on_exception=False,
        ) as span:  # fmt: skip
            try:
                return call()
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
                raise


class TracedScript:
    """A registered script whose every run is one span (`EVALSHA <name>`)."""

    def __init__(self, script: Any, name: str, spans: _Spans) -> None:
        self.script, self.name, self._spans = script, name, spans
        self.sha: str = script.sha  # redisclient.in_order pipelines scripts by digest

    def __call__(
        self, keys: Sequence[Any] | None = None, args: Iterable[Any] | None = None, client: Any = None
    ) -> Any:
        attributes = {"db.operation.name": "EVALSHA", "db.stored_procedure.name": self.name}
        return self._spans.run(
            f"EVALSHA {self.name}", attributes, lambda: self.script(keys=keys, args=args, client=client)
        )


class TracedPipeline:
    """A pipeline whose `execute` is one span naming its commands (and scripts), in order."""

    def __init__(self, pipe: Any, spans: _Spans) -> None:
        self._pipe, self._spans = pipe, spans
        self._queued: list[tuple[str, str | None]] = []

    def __getattr__(self, name: str) -> Any:
        command = getattr(self._pipe, name)

        def queue(*args: Any, **kwargs: Any) -> TracedPipeline:
            script = self._spans.names.get(str(args[0])) if name == "evalsha" and args else None
            self._queued.append((name.upper(), script))
            command(*args, **kwargs)
            return self

        return queue

    def execute(self) -> Any:
        """Send the queued commands in one round trip, inside one span."""
        commands = sorted({command for command, _ in self._queued})
        scripts = [script for _, script in self._queued if script]
        attributes: dict[str, Any] = {
            "db.operation.name": "PIPELINE" + (f" {commands[0]}" if len(commands) == 1 else ""),
            "db.operation.batch.size": len(self._queued),
        }
        if scripts:
            attributes["db.stored_procedure.name"] = ",".join(scripts)
        self._queued = []
        return self._spans.run(attributes["db.operation.name"], attributes, self._pipe.execute)


class TracedStore:
    """A redis-py client (or jwtauth's stand-ins for one) whose round trips are spans.

    `wrapped` is the client itself: code that picks a strategy by the client's type
    (redisclient.is_standalone) looks at it.
    """

    def __init__(self, client: Any, tracer: Tracer) -> None:
        self.wrapped = client
        self._spans = _Spans(tracer)

    def register_script(self, body: str | bytes) -> TracedScript:
        """Register `body` with the client; its runs are spans named after its constant."""
        script = self.wrapped.register_script(body)
        name = script_name(body)
        self._spans.names[script.sha] = name
        return TracedScript(script, name, self._spans)

    def pipeline(self, *args: Any, **kwargs: Any) -> TracedPipeline:
        """Return a pipeline whose one round trip is one span."""
        return TracedPipeline(self.wrapped.pipeline(*args, **kwargs), self._spans)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.wrapped, name)
        if name.startswith("_") or not callable(value):
            return value
        operation = name.upper()
        attributes = {"db.operation.name": operation}

        def command(*args: Any, **kwargs: Any) -> Any:
            return self._spans.run(operation, attributes, lambda: value(*args, **kwargs))

        setattr(self, name, command)  # built once per command name, then found without __getattr__
        return command
