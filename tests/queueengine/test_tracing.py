"""The otel extra (issue 15): a producer span around put, a consumer span around each handler run,
linked through the W3C trace context stored with the job; recorded by the real OpenTelemetry SDK's
in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from queueengine import (
    Client,
    DuplicateJob,
    tracing,
)
from queueengine.devtools.testing import run_jobs


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The engine's spans go to an in-memory exporter for the test."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.configure(provider)
    yield exporter
    tracing.configure(None)
    provider.shutdown()


def by_name(exporter: InMemorySpanExporter) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for span in exporter.get_finished_spans():
        out.setdefault(span.name, []).append(span)
    return out


def test_put_and_run_make_linked_producer_and_consumer_spans(engine: Client, spans: InMemorySpanExporter,
                                                             redis_conn: redis.Redis) -> None:
    q = engine.queues["emails/daily"]
    jid = q.put("tests.jobfixtures.add", {"x": 1, "y": 2})
    assert redis_conn.hget(engine.keys.job(jid), "trace") is not None
    assert run_jobs(engine, ["emails/daily"]) == 1
    got = by_name(spans)
    (send,) = got["send emails/daily"]
    (process,) = got["process emails/daily"]
    assert send.kind == SpanKind.PRODUCER and process.kind == SpanKind.CONSUMER
    for span, operation in ((send, "send"), (process, "process")):
        assert span.attributes["messaging.system"] == "queueengine"
        assert span.attributes["messaging.destination.name"] == "emails/daily"
        assert span.attributes["messaging.operation.name"] == operation
        assert span.attributes["messaging.operation.type"] == operation
        assert span.attributes["messaging.message.id"] == jid
    # one trace: the consumer is the producer's child and links to it
    assert process.context.trace_id == send.context.trace_id
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    assert [link.context.span_id for link in process.links] == [send.context.span_id]
    assert process.status.status_code != StatusCode.ERROR
    assert engine.jobs[jid].result == 3


def test_a_failing_handler_sets_error_type(engine: Client, spans: InMemorySpanExporter) -> None:
    q = engine.queues["fails"]
    jid = q.put("tests.jobfixtures.boom", {"what": "x"})
    run_jobs(engine, ["fails"])
    (process,) = by_name(spans)["process fails"]
    assert process.attributes["error.type"] == "KeyError"
    assert process.status.status_code == StatusCode.ERROR
    assert engine.jobs[jid].failure["group"] == "fails-KeyError"


def test_async_handlers_get_their_span_too(engine: Client, spans: InMemorySpanExporter) -> None:
    q = engine.queues["async"]
    q.put("tests.jobfixtures.async_add", {"x": 2, "y": 3})
    run_jobs(engine, ["async"])
    got = by_name(spans)
    (send,), (process,) = got["send async"], got["process async"]
    assert process.parent is not None and process.parent.span_id == send.context.span_id


def test_put_many_is_one_send_span_shared_by_its_jobs(engine: Client, spans: InMemorySpanExporter,
                                                      redis_conn: redis.Redis) -> None:
    q = engine.queues["batch"]
    jids = q.put_many([("tests.jobfixtures.noop", {}) for _ in range(3)]
                      + [{"klass": "tests.jobfixtures.noop", "data": {}, "priority": 5}])
    (send,) = by_name(spans)["send batch"]
    assert send.attributes["messaging.batch.message_count"] == 4
    assert "messaging.message.id" not in send.attributes
    contexts = {redis_conn.hget(engine.keys.job(j), "trace") for j in jids}
    assert len(contexts) == 1 and None not in contexts
    run_jobs(engine, ["batch"])
    processes = by_name(spans)["process batch"]
    assert len(processes) == 4 and {p.parent.span_id for p in processes} == {send.context.span_id}


def test_a_refused_put_records_its_error(engine: Client, spans: InMemorySpanExporter) -> None:
    q = engine.queues["dup"]
    q.put("k", {}, jid="once")
    with pytest.raises(DuplicateJob):
        q.put("k", {}, jid="once", unique=True)
    failed = [s for s in by_name(spans)["send dup"] if s.status.status_code == StatusCode.ERROR]
    assert len(failed) == 1 and failed[0].attributes["error.type"] == "DuplicateJob"


def test_without_a_tracer_provider_nothing_is_recorded_or_stored(engine: Client, redis_conn: redis.Redis) -> None:
    tracing.configure(None)           # the global provider: not set in the test session
    assert tracing.tracer() is None
    q = engine.queues["plain"]
    jid = q.put("tests.jobfixtures.noop", {})
    jids = q.put_many([("tests.jobfixtures.noop", {}) for _ in range(2)])
    for j in [jid, *jids]:
        assert redis_conn.hget(engine.keys.job(j), "trace") is None
    job = q.pop()
    assert job is not None and job.trace_context is None


def test_the_trace_argument_is_checked_in_lua(engine: Client, unchanged: Any) -> None:
    """A raw put with a trace context that is not a JSON object is refused; nothing is written."""
    from queueengine.exceptions import InvalidArgument
    from queueengine.queue import put_fields

    fields = put_fields("k", {})
    err = unchanged(InvalidArgument, engine, "put", "w", "q", *fields, "not json")
    assert "trace" in str(err)
