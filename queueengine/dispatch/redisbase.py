"""What the three Redis modes share: connections, the mode record, the reply listener.

The modes' keys are built by ``queueengine.store.keys.ModeKeys`` (the schema is listed there).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import orjson
import redis

from queueengine.store.connection import namespace_client
from queueengine.store.keys import ModeKeys

from .errors import ModeMismatch, QueueEngineError

log = logging.getLogger("queueengine.dispatch")



def connect(uri: str, namespace: str = "default", **kwargs: Any) -> redis.Redis:
    """A connection pool to ``uri`` for ``namespace``; raises QueueEngineError naming the URL when
    unreachable. ``uri`` may be a ``redis+cluster://`` URL (the client is then pinned to the
    primary serving the namespace's slot) or a ``redis+sentinel://`` one (Sentinel's primary)."""
    conn = namespace_client(uri, namespace, **kwargs)
    try:
        conn.ping()
    except redis.exceptions.RedisError as exc:
        conn.close()
        raise QueueEngineError(f"cannot reach Redis at uri={uri!r}: {exc}") from exc
    return conn


def claim_mode(conn: redis.Redis, keys: ModeKeys, mode: str) -> None:
    """Record ``mode`` for the namespace, or raise ModeMismatch if another one is recorded."""
    if conn.set(keys.mode, mode, nx=True):
        return
    raw = conn.get(keys.mode)
    recorded = raw.decode() if isinstance(raw, bytes) else raw
    if recorded is not None and recorded != mode:
        raise ModeMismatch(keys.namespace, str(recorded), mode)


def reply_message(jid: str, ok: bool, value: Any) -> bytes:
    """The message a worker publishes to the client: {"id", "ok", "v"}."""
    return orjson.dumps({"id": jid, "ok": ok, "v": value})


class ReplyListener:
    """A thread that reads one pub/sub channel (or pattern) and hands each message on.

    It reads a raw connection (no per-message client-library overhead) and, when the
    connection drops, reconnects and subscribes again with backoff; results published in the
    gap are recovered by the durable modes' stored-result reads.
    """

    def __init__(
        self,
        conn: redis.Redis,
        handler: Callable[[bytes], None],
        channel: str | None = None,
        pattern: str | None = None,
    ) -> None:
        self._handler = handler
        self._subscribe: list[tuple[str, str]] = []
        if channel:
            self._subscribe.append(("SUBSCRIBE", channel))
        if pattern:
            self._subscribe.append(("PSUBSCRIBE", pattern))
        self._stop = threading.Event()
        self._conn: Any = conn.connection_pool.make_connection()
        self._thread = threading.Thread(target=self._run, name="qe-replies", daemon=True)

    def _connect(self) -> None:
        """(Re)connect and subscribe; return once Redis confirmed every subscription."""
        conn = self._conn
        conn.disconnect()
        conn.connect()
        conn.send_packed_command(conn.pack_commands(self._subscribe))
        for _ in self._subscribe:
            if not conn.can_read(timeout=5.0):
                raise QueueEngineError("no subscription confirmation from Redis within 5s")
            conn.read_response(push_request=True)

    def start(self) -> None:
        """Subscribe, wait for the confirmation (so no reply can precede it), start the thread."""
        try:
            self._connect()
        except (redis.exceptions.RedisError, OSError) as exc:
            raise QueueEngineError(f"cannot subscribe to the reply channel: {exc}") from exc
        self._thread.start()

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                # Block in recv (no per-message poll); stop() wakes it with an UNSUBSCRIBE.
                msg = self._conn.read_response(push_request=True, timeout=None)
                backoff = 0.1
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
                if self._stop.is_set():
                    return
                log.warning("reply channel lost (%s); resubscribing in %.1fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
                with contextlib.suppress(redis.exceptions.RedisError, OSError, QueueEngineError):
                    self._connect()
                continue
            except Exception:  # pragma: no cover - closed under our feet
                if self._stop.is_set():
                    return
                raise
            if isinstance(msg, list) and msg and msg[0] in (b"message", b"pmessage"):
                try:
                    self._handler(msg[-1])
                except Exception:
                    log.exception("bad reply message %r", msg[-1])

    def stop(self) -> None:
        """Stop the thread (woken by the reply to an UNSUBSCRIBE) and close the connection."""
        self._stop.set()
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                unsubscribe = [("UNSUBSCRIBE",)] if any(c == "SUBSCRIBE" for c, _ in self._subscribe) else []
                unsubscribe += [("PUNSUBSCRIBE",)] if any(c == "PSUBSCRIBE" for c, _ in self._subscribe) else []
                self._conn.send_packed_command(self._conn.pack_commands(unsubscribe))
            self._thread.join(2.0)
        with contextlib.suppress(Exception):
            self._conn.disconnect()
