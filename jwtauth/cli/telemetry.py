"""OpenTelemetry tracing for `jwtauth serve` (the `otel` extra): when it is on, and each worker's tracer.

The rule: tracing is on when the operator says where spans go (OTEL_TRACES_EXPORTER, or
OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and OTEL_SDK_DISABLED is
not `true`; `OTEL_TRACES_EXPORTER=none` is off. Nothing else turns it on, so a machine that
merely has the extra installed never tries to reach a collector nobody runs. Off, nothing of
OpenTelemetry is imported: `wanted` reads the environment and nothing more.

The rest of the configuration is the SDK's own handling of the standard variables:
OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (Resource.create; `jwtauth` when neither names
the service), OTEL_TRACES_SAMPLER(_ARG) (TracerProvider), OTEL_EXPORTER_OTLP_* (the exporter),
OTEL_BSP_* (BatchSpanProcessor), OTEL_PROPAGATORS (the propagators). Only the choice of
exporter is made here, through the exporters' own entry points, because the SDK's
autoconfiguration is not public API: `otlp` means OTLP over OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL,
http/protobuf by default (the spec's default, and the exporter the extra ships: no grpcio).

granian forks its workers: each builds its own provider after the fork (a BatchSpanProcessor's
thread does not survive one) and flushes it when the worker exits. A worker exits through
multiprocessing, which skips atexit handlers, so the flush is a multiprocessing finalizer.
"""

from __future__ import annotations

import importlib.util
import multiprocessing.util
import os
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from jwtauth import __version__

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

WHERE = ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_GROUP = "opentelemetry_traces_exporter"
# OTLP's protocols and the entry point of the exporter that speaks each.
_OTLP = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}
INSTALL = "pip install 'jwtauth-server[otel]'"


class TelemetryError(Exception):
    """The OTEL_* variables ask for tracing this installation cannot do; one line for the operator."""


def wanted(env: Mapping[str, str]) -> bool:
    """Return whether the OTEL_* variables turn tracing on (see the module's rule)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if not any(env.get(name, "").strip() for name in WHERE):
        return False
    return _exporter_names(env) != []


def installed() -> bool:
    """Return whether the `otel` extra (the SDK) is installed."""
    try:
        return importlib.util.find_spec("opentelemetry.sdk") is not None
    except ModuleNotFoundError:  # no opentelemetry at all: its parent package cannot be imported
        return False


def check(env: Mapping[str, str]) -> None:
    """Raise TelemetryError unless every exporter named is installed (before forking any worker)."""
    for name in _exporter_names(env):
        point, what = _entry_point(name, env)
        if not entry_points(group=_GROUP, name=point):
            raise TelemetryError(
                f"OTEL_TRACES_EXPORTER: no span exporter for {what} is installed "
                "(the otel extra exports otlp over http/protobuf, and console)"
            )


def worker_tracer() -> Tracer:
    """Build this worker's tracer provider from the OTEL_* variables; flush it when the worker exits.

    From the process's environment, as the SDK reads it: one source for every variable.
    """
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.version": __version__})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "jwtauth"}))
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    for name in _exporter_names(os.environ):
        point = next(iter(entry_points(group=_GROUP, name=_entry_point(name, os.environ)[0])))
        provider.add_span_processor(BatchSpanProcessor(point.load()()))
    # Runs when the worker's process ends (SIGTERM drains, then multiprocessing exits), or at exit.
    # (With no object to watch: the callback's reference keeps the provider alive until then.)
    multiprocessing.util.Finalize(None, provider.shutdown, exitpriority=10)
    return provider.get_tracer("jwtauth", __version__)


def _exporter_names(env: Mapping[str, str]) -> list[str]:
    """Return the exporters OTEL_TRACES_EXPORTER names (default: otlp), without `none`."""
    names = [n.strip() for n in (env.get("OTEL_TRACES_EXPORTER") or "otlp").split(",")]
    return [n for n in names if n and n != "none"]


def _entry_point(name: str, env: Mapping[str, str]) -> tuple[str, str]:
    """Return the entry point of exporter `name` and how to name it to the operator.

    `otlp` is the exporter speaking OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL (spec default: http/protobuf).
    """
    if name != "otlp":
        return name, repr(name)
    chosen = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    protocol = (chosen or "http/protobuf").strip()
    return _OTLP.get(protocol, f"otlp:{protocol}"), f"otlp over {protocol}"
