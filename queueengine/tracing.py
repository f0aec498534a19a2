"""OpenTelemetry spans for puts and handler runs: the optional ``otel`` extra.

With ``pip install queueengine[otel]`` (``opentelemetry-api``) and a tracer provider configured
by the application (the OpenTelemetry SDK, or any distro), the engine makes

- a ``send <queue>`` PRODUCER span around each ``q.put`` (and one per ``q.put_many`` call), whose
  W3C trace context (``traceparent``, ``tracestate``) is stored with the job (its ``trace``
  field), and
- a ``process <queue>`` CONSUMER span around each handler run in ``queueengine.worker``, a child
  of the producer's span with a link to it (so the two show as one trace),

with the messaging semantic conventions' attributes: ``messaging.system`` (``queueengine``),
``messaging.destination.name`` (the queue), ``messaging.operation.name`` / ``.type`` (``send`` /
``process``), ``messaging.message.id`` (the jid; a batch: ``messaging.batch.message_count``) and,
when the put or the handler raises, ``error.type`` (the exception's class) with an error status.

Without the package, or while no tracer provider is set, nothing is recorded and each put or run
costs one cheap check. ``configure(provider)`` makes the engine use a given provider instead of
the global one (tests, or an application keeping the engine's spans apart).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

try:  # the otel extra
    from opentelemetry import trace as _trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - exercised where the extra is not installed
    _trace = None  # type: ignore[assignment]
    TraceContextTextMapPropagator = None  # type: ignore[assignment,misc]

SYSTEM = "queueengine"
"""``messaging.system`` of the engine's spans."""
INSTRUMENTATION = "queueengine"

_NO_TRACE: contextlib.nullcontext[tuple[str, ...]] = contextlib.nullcontext(())
_provider: Any = None
_propagator: Any = TraceContextTextMapPropagator() if TraceContextTextMapPropagator is not None else None


def available() -> bool:
    """Whether the OpenTelemetry API is installed (the ``otel`` extra)."""
    return _trace is not None


def configure(provider: Any = None) -> None:
    """Use ``provider`` (a ``TracerProvider``) for the engine's spans; None: the global one."""
    global _provider
    _provider = provider


def tracer() -> Any:
    """The tracer to use now, or None when nothing would record (no API, or no provider set)."""
    if _trace is None:
        return None
    provider = _provider if _provider is not None else _trace.get_tracer_provider()
    if isinstance(provider, (_trace.ProxyTracerProvider, _trace.NoOpTracerProvider)):
        return None
    return provider.get_tracer(INSTRUMENTATION)


def attributes(queue: str, operation: str, jid: str | None = None, count: int = 1) -> dict[str, Any]:
    """The messaging attributes of a span."""
    attrs: dict[str, Any] = {"messaging.system": SYSTEM, "messaging.destination.name": queue,
                             "messaging.operation.name": operation, "messaging.operation.type": operation}
    if jid is not None:
        attrs["messaging.message.id"] = jid
    if count != 1:
        attrs["messaging.batch.message_count"] = count
    return attrs


def failed(span: Any, exc: BaseException) -> None:
    """Mark a span as failed by ``exc`` (``error.type``, error status, the exception event)."""
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:300]))
    span.record_exception(exc)


def send(queue: str, jid: str | None, count: int = 1) -> contextlib.AbstractContextManager[tuple[str, ...]]:
    """The producer span of a put: yields the extra put argument carrying the trace context
    (``("{\\"traceparent\\": ...}",)``), or ``()`` when nothing is traced."""
    t = tracer()
    if t is None:
        return _NO_TRACE
    return _send(t, queue, jid, count)


@contextlib.contextmanager
def _send(t: Any, queue: str, jid: str | None, count: int) -> Iterator[tuple[str, ...]]:
    with t.start_as_current_span(f"send {queue}", kind=_trace.SpanKind.PRODUCER,
                                 attributes=attributes(queue, "send", jid, count),
                                 record_exception=False, set_status_on_exception=False) as span:
        carrier: dict[str, str] = {}
        _propagator.inject(carrier)
        try:
            yield (orjson.dumps(carrier).decode(),) if carrier else ()
        except BaseException as exc:
            failed(span, exc)
            raise


def extract(carrier: Mapping[str, str] | None) -> Any:
    """The OpenTelemetry context of a stored trace context (None when there is none)."""
    if not carrier or _propagator is None:
        return None
    return _propagator.extract(dict(carrier))


__all__ = ["SYSTEM", "attributes", "available", "configure", "extract", "failed", "send", "tracer"]
