"""The worker's side of the ``otel`` extra: a ``process <queue>`` CONSUMER span around each
handler run, a child of (and linked to) the producer's span whose context the job carries
(see ``queueengine.tracing``). Without the extra or a tracer provider: a shared no-op."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from queueengine import tracing as _tracing

if TYPE_CHECKING:
    from queueengine.job import Job

_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()


def process(job: Job) -> contextlib.AbstractContextManager[None]:
    """The consumer span of one handler run of ``job`` (a no-op when nothing is traced)."""
    t = _tracing.tracer()
    if t is None:
        return _NOTHING
    return _process(t, job)


@contextlib.contextmanager
def _process(t: Any, job: Job) -> Iterator[None]:
    from opentelemetry import trace

    parent = _tracing.extract(job.trace_context)
    links = []
    if parent is not None:
        producer = trace.get_current_span(parent).get_span_context()
        if producer.is_valid:
            links.append(trace.Link(producer))
    with t.start_as_current_span(f"process {job.queue_name}", context=parent, kind=trace.SpanKind.CONSUMER,
                                 links=links, attributes=_tracing.attributes(job.queue_name, "process", job.jid),
                                 record_exception=False, set_status_on_exception=False) as span:
        try:
            yield
        except BaseException as exc:
            _tracing.failed(span, exc)
            raise
