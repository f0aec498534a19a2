"""``JobManager``: builds clients and workers of a backend type and delivery mode.

Options are checked here, before any connection is made: an unknown type, option, mode or a
malformed value raises ``InvalidArgument`` naming it, and nothing reaches Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from queueengine.store.connection import parse_url

from .base import Client, ClientBackend, WorkerBackend, new_id
from .errors import InvalidArgument
from .worker import Worker

TYPES = ("redis", "memory")
MODES = ("simple", "recoverable", "reliable", "jobasync")
DEFAULT_MODE = "reliable"
DEFAULT_URI = "redis://127.0.0.1:6379/0"

_COMMON = {"uri", "mode", "prefix", "namespace"}
CLIENT_OPTIONS = _COMMON | {"queue", "timeout", "id", "retries"}
WORKER_OPTIONS = _COMMON | {
    "queue", "queues", "timeout", "max_concurrent_jobs", "heartbeat", "poll_interval",
    "sweep_interval", "sweep_older_than", "prefetch",
}


def _check_type(kind: str) -> str:
    if kind not in TYPES:
        raise InvalidArgument(f"unknown backend type {kind!r}: expected one of {', '.join(TYPES)}")
    return kind


def _check_options(what: str, cfg: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise InvalidArgument(
            f"{what}(): unknown option {unknown[0]!r}; known options: {', '.join(sorted(allowed))}"
        )


def _number(what: str, name: str, value: Any, *, positive: bool = True, integer: bool = False) -> Any:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < 0 or (positive and value == 0):
        need = "an integer" if integer else "a number"
        raise InvalidArgument(f"{what}(): option {name!r} must be {need} > 0, got {value!r}")
    return value


def _name(what: str, option: str, value: Any) -> str:
    if not isinstance(value, str) or not value or any(c in value for c in "{}\n\r \t"):
        raise InvalidArgument(
            f"{what}(): option {option!r} must be a non-empty name without spaces or braces, got {value!r}"
        )
    return value


def _namespace(what: str, cfg: dict[str, Any]) -> str:
    if "prefix" in cfg and "namespace" in cfg and cfg["prefix"] != cfg["namespace"]:
        raise InvalidArgument(f"{what}(): options 'prefix' and 'namespace' are the same thing; give one")
    return _name(what, "namespace", cfg.get("namespace", cfg.get("prefix", "default")))


def _mode(what: str, cfg: dict[str, Any]) -> str:
    mode = cfg.get("mode", DEFAULT_MODE)
    if mode not in MODES:
        raise InvalidArgument(f"{what}(): option 'mode' must be one of {', '.join(MODES)}, got {mode!r}")
    return str(mode)


def _uri(what: str, cfg: dict[str, Any]) -> str:
    uri = cfg.get("uri", DEFAULT_URI)
    if not isinstance(uri, str):
        raise InvalidArgument(f"{what}(): option 'uri' must be a redis:// URL string, got {uri!r}")
    if uri.lower().startswith(("redis+", "rediss+")):  # redis+cluster://, redis+sentinel://
        try:
            parse_url(uri)
        except InvalidArgument as exc:
            raise InvalidArgument(f"{what}(): option 'uri': {exc}") from None
        return uri
    parsed = urlparse(uri)
    if parsed.scheme not in ("redis", "rediss", "unix") or (parsed.scheme != "unix" and not parsed.hostname):
        raise InvalidArgument(
            f"{what}(): option 'uri' must be a redis://host[:port][/db], rediss:// or unix:// URL, got {uri!r}"
        )
    try:
        parsed.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise InvalidArgument(f"{what}(): option 'uri' has a bad port: {uri!r} ({exc})") from None
    return uri


def _queues(cfg: dict[str, Any]) -> list[str]:
    if "queue" in cfg and "queues" in cfg:
        raise InvalidArgument("worker(): give 'queue' or 'queues', not both")
    raw = cfg["queues"] if "queues" in cfg else [cfg.get("queue", "default")]
    if isinstance(raw, str) or not isinstance(raw, Sequence) or not raw:
        raise InvalidArgument(f"worker(): option 'queues' must be a non-empty list of names, got {raw!r}")
    names = [_name("worker", "queues", q) for q in raw]
    if len(set(names)) != len(names):
        raise InvalidArgument(f"worker(): option 'queues' names a queue twice: {names!r}")
    return names


class JobManager:
    """Factory of clients and workers: ``JobManager().client("redis", uri=..., mode=...)``."""

    def client(self, type: str = "redis", **cfg: Any) -> Client:
        """Build and start a client; see DESIGN.md §4 for the options."""
        _check_type(type)
        if cfg.get("mode") == "jobasync":  # Job::Async::Redis's own keys: options of its own
            from .jobasync import build_client

            return build_client(type, cfg)
        _check_options("client", cfg, CLIENT_OPTIONS)
        mode = _mode("client", cfg)
        namespace = _namespace("client", cfg)
        queue = _name("client", "queue", cfg.get("queue", "default"))
        timeout = cfg.get("timeout")
        if timeout is not None:
            _number("client", "timeout", timeout)
        client_id = _name("client", "id", cfg.get("id") or new_id())
        retries = _number("client", "retries", cfg.get("retries", 5), positive=False, integer=True)
        backend: ClientBackend
        if type == "memory":
            from .memory import MemoryClientBackend

            backend = MemoryClientBackend(namespace, mode, queue, client_id)
        else:
            uri = _uri("client", cfg)
            backend = _redis_client_backend(mode, uri, namespace, queue, client_id, retries)
        return Client(backend, timeout=timeout, id=client_id).start()

    def worker(self, type: str = "redis", **cfg: Any) -> Worker:
        """Build a worker and check its namespace's mode; ``start()`` or ``run()`` it."""
        _check_type(type)
        if cfg.get("mode") == "jobasync":
            from .jobasync import build_worker

            return build_worker(type, cfg)
        _check_options("worker", cfg, WORKER_OPTIONS)
        mode = _mode("worker", cfg)
        namespace = _namespace("worker", cfg)
        queues = _queues(cfg)
        mcj = _number("worker", "max_concurrent_jobs", cfg.get("max_concurrent_jobs", 1), integer=True)
        timeout = cfg.get("timeout")
        if timeout is not None:
            _number("worker", "timeout", timeout)
        poll = _number("worker", "poll_interval", cfg.get("poll_interval", 1.0))
        extra = {
            "heartbeat": cfg.get("heartbeat"),
            "sweep_interval": cfg.get("sweep_interval", 30.0),
            "sweep_older_than": cfg.get("sweep_older_than", 300.0),
            "prefetch": cfg.get("prefetch", 16),
        }
        for name in ("heartbeat", "sweep_interval", "sweep_older_than"):
            if extra[name] is not None:
                _number("worker", name, extra[name])
        _number("worker", "prefetch", extra["prefetch"], integer=True)
        backend: WorkerBackend
        if type == "memory":
            from .memory import MemoryWorkerBackend

            backend = MemoryWorkerBackend(namespace, mode, queues)
        else:
            uri = _uri("worker", cfg)
            backend = _redis_worker_backend(mode, uri, namespace, queues, extra)
        backend.start()
        return Worker(backend, queues=queues, max_concurrent_jobs=mcj, timeout=timeout, poll_interval=poll)


def _redis_client_backend(
    mode: str, uri: str, namespace: str, queue: str, client_id: str, retries: int
) -> ClientBackend:
    if mode == "simple":
        from .simple import SimpleClientBackend

        return SimpleClientBackend(uri, namespace, queue, client_id)
    if mode == "recoverable":
        from .recoverable import RecoverableClientBackend

        return RecoverableClientBackend(uri, namespace, queue, client_id, retries)
    from .reliable import ReliableClientBackend

    return ReliableClientBackend(uri, namespace, queue, client_id, retries)


def _redis_worker_backend(
    mode: str, uri: str, namespace: str, queues: list[str], extra: dict[str, Any]
) -> WorkerBackend:
    if mode == "simple":
        from .simple import SimpleWorkerBackend

        return SimpleWorkerBackend(uri, namespace, queues, int(extra["prefetch"]))
    if mode == "recoverable":
        from .recoverable import RecoverableWorkerBackend

        return RecoverableWorkerBackend(uri, namespace, queues, extra)
    from .reliable import ReliableWorkerBackend

    return ReliableWorkerBackend(uri, namespace, queues, extra)
