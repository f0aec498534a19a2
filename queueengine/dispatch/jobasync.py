"""``jobasync`` mode: the wire protocol of Perl's Job::Async::Redis 0.004, spoken from Python.

A client or worker in this mode reads and writes exactly the keys of a Perl peer, so Perl and
Python clients and workers share one queue (``P`` = ``prefix``, default ``jobs``; ``Q`` = the
queue, default ``pending``; an empty prefix means bare names)::

    P::Q              list     job ids; the client LPUSHes, a worker moves the tail to P::processing
    P::processing     list     ids being worked on (shared by every worker of the prefix)
    job::<id>         hash     _reply_to, _queued, text_<k> / json_<k> / sereal_<k> parameters;
                               the worker adds _started, then _processed and result (T<text>|J<json>)
    client::<id>      channel  the worker PUBLISHes the job id; the client HMGETs result, then DELs

Our additions live in fields a Perl peer never reads or skips (``_qe``, ``_failed``, ``_error``)
and in one list (``P::failed``), so they change nothing for it:

* a Python client writes ``_qe``: a JSON object with the exact values of its non-string scalar
  parameters (numbers, booleans, null), which it also sends as ``text_<k>`` for a Perl worker;
  its presence tells a Python worker that this client reads failures;
* a Python worker that fails a job writes ``_failed`` (time) and ``_error`` (JSON ``{group,
  message}``) and removes the id from ``P::processing``; for a Python client it then publishes
  the id (the future raises ``JobFailed``); for a Perl client it publishes nothing, as a Perl
  worker would, and pushes the id onto ``P::failed`` for an operator;
* a Python client's results are stored until it reads them, so it also reads back a result whose
  notification it missed, and its ``timeout`` withdraws the job (``LREM`` + ``DEL``).

See docs/modes.md ("jobasync") and the README ("Moving from Job::Async").
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson

from queueengine.store.keys import JOBASYNC_FAILED, JOBASYNC_PREFIX, JOBASYNC_PROCESSING, JobAsyncKeys

from . import sereal
from .base import Client, new_id
from .errors import InvalidArgument
from .manager import _name, _number, _uri
from .worker import Worker

DEFAULT_PREFIX = JOBASYNC_PREFIX
DEFAULT_QUEUE = "pending"
DEFAULT_PROCESSING = JOBASYNC_PROCESSING
FAILED = JOBASYNC_FAILED
"""The list (``P::failed``) of ids of Perl clients' jobs that a Python worker failed."""

CLIENT_OPTIONS = {"uri", "mode", "prefix", "queue", "timeout", "id", "use_multi"}
WORKER_OPTIONS = {
    "uri", "mode", "prefix", "queue", "queues", "timeout", "max_concurrent_jobs", "poll_interval",
    "use_multi", "processing_queue",
}
_FIELD = re.compile(r"(json|text|sereal)_(.*)", re.DOTALL)



def stamp() -> str:
    """Epoch seconds as Perl's ``Time::HiRes::time`` prints them (15 significant digits)."""
    return f"{time.time():.15g}"


# -- parameters ------------------------------------------------------------------------------
def perl_text(value: Any) -> str:
    """A scalar as Perl would stringify it: numbers, ``1``/``""`` for booleans, ``""`` for undef."""
    if value is None or value is False:
        return ""
    if value is True:
        return "1"
    if isinstance(value, float):
        return "Inf" if value == float("inf") else "-Inf" if value == float("-inf") else f"{value:.15g}"
    return str(value)


def encode_params(data: dict[str, Any]) -> dict[str, bytes]:
    """The job hash fields of a Python client's parameters.

    Strings and other scalars go in ``text_<k>`` (what a Perl worker reads as a plain value),
    hashes and lists in ``json_<k>``; ``_qe`` keeps the exact JSON of the non-string scalars.
    """
    fields: dict[str, bytes] = {}
    typed: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict | list):
            fields[f"json_{key}"] = orjson.dumps(value)
            continue
        if not isinstance(value, str):
            typed[key] = value
        fields[f"text_{key}"] = perl_text(value).encode()
    fields["_qe"] = orjson.dumps(typed)
    return fields


class FieldError(ValueError):
    """A job hash field that cannot be decoded; the message names the field."""


def _str(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def decode_fields(raw: dict[bytes, bytes]) -> tuple[dict[str, Any], dict[str, str]]:
    """``(parameters, meta)`` from a job hash, as Job::Async's ``structured_data`` reads it.

    Fields starting with ``_`` are metadata (not parameters); ``result`` is ignored; other
    fields starting with a lowercase letter must be ``text_``/``json_``/``sereal_`` (else
    :class:`FieldError`, as Perl dies with "invalid format"); the rest are skipped.
    """
    data: dict[str, Any] = {}
    meta: dict[str, str] = {}
    for rawkey, value in raw.items():
        key = _str(rawkey)
        if key.startswith("_"):
            meta[key] = _str(value)
            continue
        if key == "result" or not key[:1].islower() or not key[:1].isascii():
            continue
        found = _FIELD.fullmatch(key)
        if found is None:
            raise FieldError(f"invalid format for field {key!r} (expected text_<k>, json_<k> or sereal_<k>)")
        kind, name = found.groups()
        if kind == "text":
            data[name] = _str(value)
        elif kind == "json":
            try:
                data[name] = orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                raise FieldError(f"field {key!r} is not JSON: {exc}") from None
        else:
            try:
                data[name] = sereal.decode(value)
            except sereal.SerealError as exc:
                raise FieldError(
                    f"field {key!r}: {exc} (sereal_ fields are decoded for plain data only: hashes, "
                    "arrays, strings, numbers, undef)"
                ) from None
    typed = meta.get("_qe")
    if typed:
        try:
            exact = orjson.loads(typed)
        except orjson.JSONDecodeError:
            raise FieldError("field '_qe' is not JSON") from None
        if isinstance(exact, dict):
            data.update((k, v) for k, v in exact.items() if k in data)
    return data, meta


# -- results ---------------------------------------------------------------------------------
def encode_result(value: Any, python_client: bool) -> bytes:
    """The ``result`` field: ``T`` + text or ``J`` + JSON.

    For a Perl client exactly what a Perl worker writes (strings and numbers as text, undef as
    ``T``, hashes and lists as JSON); for a Python client every non-string as JSON, so numbers,
    booleans and ``None`` come back as they were.
    """
    if isinstance(value, str):
        return b"T" + value.encode()
    if python_client or isinstance(value, dict | list):
        return b"J" + orjson.dumps(value)
    return b"T" + perl_text(value).encode()


def decode_result(raw: bytes) -> Any:
    """A ``result`` field's value, as Job::Async's client reads it (``J``: JSON, else text)."""
    if raw[:1] == b"J":
        return orjson.loads(raw[1:])
    return _str(raw[1:])


# -- building clients and workers --------------------------------------------------------------
def _options(what: str, cfg: dict[str, Any], allowed: set[str]) -> tuple[str, str, bool]:
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise InvalidArgument(
            f"{what}(): option {unknown[0]!r} does not apply in mode 'jobasync'; "
            f"its options: {', '.join(sorted(allowed))}"
        )
    prefix = cfg.get("prefix", DEFAULT_PREFIX)
    if not isinstance(prefix, str) or any(c.isspace() for c in prefix):
        raise InvalidArgument(f"{what}(): option 'prefix' must be a string without spaces ('' for none), got {prefix!r}")
    uri = _uri(what, cfg)
    if uri.lower().startswith(("redis+cluster", "rediss+cluster")):
        raise InvalidArgument(
            f"{what}(): option 'uri': mode 'jobasync' speaks Job::Async::Redis, whose keys are not "
            f"cluster-safe; give a redis:// (or redis+sentinel://) URL, got {uri!r}"
        )
    use_multi = cfg.get("use_multi", False)
    if not isinstance(use_multi, bool):
        raise InvalidArgument(f"{what}(): option 'use_multi' must be True or False, got {use_multi!r}")
    return prefix, uri, use_multi


def _queue_name(what: str, option: str, value: Any, reserved: tuple[str, ...]) -> str:
    name = _name(what, option, value)
    if name in reserved:
        raise InvalidArgument(f"{what}(): option {option!r} may not be {name!r}: that list is the workers' own")
    return name


def _memory_refused(kind: str) -> None:
    if kind == "memory":
        raise InvalidArgument(
            "mode 'jobasync' is Job::Async::Redis's wire protocol: use type 'redis' "
            "(the memory backend serves the modes simple, recoverable and reliable)"
        )


def build_client(kind: str, cfg: dict[str, Any]) -> Client:
    """``JobManager().client("redis", mode="jobasync", ...)``: checked options, started client."""
    _memory_refused(kind)
    prefix, uri, use_multi = _options("client", cfg, CLIENT_OPTIONS)
    queue = _queue_name("client", "queue", cfg.get("queue", DEFAULT_QUEUE), (DEFAULT_PROCESSING, FAILED))
    timeout = cfg.get("timeout")
    if timeout is not None:
        _number("client", "timeout", timeout)
    from .jobasync_client import JobAsyncClientBackend

    client_id = _name("client", "id", cfg.get("id") or new_id())
    backend = JobAsyncClientBackend(uri, JobAsyncKeys(prefix), queue, client_id, use_multi)
    return Client(backend, timeout=timeout, id=client_id).start()


def build_worker(kind: str, cfg: dict[str, Any]) -> Worker:
    """``JobManager().worker("redis", mode="jobasync", ...)``: checked options, connected worker."""
    _memory_refused(kind)
    prefix, uri, use_multi = _options("worker", cfg, WORKER_OPTIONS)
    processing = _name("worker", "processing_queue", cfg.get("processing_queue", DEFAULT_PROCESSING))
    if "queue" in cfg and "queues" in cfg:
        raise InvalidArgument("worker(): give 'queue' or 'queues', not both")
    raw = cfg["queues"] if "queues" in cfg else [cfg.get("queue", DEFAULT_QUEUE)]
    if isinstance(raw, str) or not isinstance(raw, list | tuple) or not raw:
        raise InvalidArgument(f"worker(): option 'queues' must be a non-empty list of names, got {raw!r}")
    queues = [_queue_name("worker", "queues", q, (processing, FAILED)) for q in raw]
    if len(set(queues)) != len(queues):
        raise InvalidArgument(f"worker(): option 'queues' names a queue twice: {queues!r}")
    mcj = _number("worker", "max_concurrent_jobs", cfg.get("max_concurrent_jobs", 1), integer=True)
    timeout = cfg.get("timeout")
    if timeout is not None:
        _number("worker", "timeout", timeout)
    poll = _number("worker", "poll_interval", cfg.get("poll_interval", 1.0))
    from .jobasync_worker import JobAsyncWorkerBackend

    backend = JobAsyncWorkerBackend(uri, JobAsyncKeys(prefix, processing), queues, use_multi)
    backend.start()
    return Worker(backend, queues=queues, max_concurrent_jobs=mcj, timeout=timeout, poll_interval=poll)
