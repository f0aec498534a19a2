"""``simple`` mode: the whole JSON payload in a Redis list, the result on the client's channel.

Client: ``LPUSH m:s:<queue> {"id","r","d"}`` (one command). Worker: ``BLMPOP`` over its queues
in priority order (the first non-empty key wins, so priority is strict), the result published
on ``m:reply:<client>`` together with the next fetch (one round trip per job). A worker that
dies holding a job loses it; that is the documented cost of this mode.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from queueengine.store.keys import ModeKeys

from .base import GroupCommit, Outcome, RawJob
from .redisbase import ReplyListener, claim_mode, connect, reply_message

ACK_DELAY = 0.005
"""Longest a result of a prefetched batch waits to be published with the others (seconds)."""


class SimpleClientBackend:
    """Client side of simple mode."""

    durable = False

    def __init__(self, uri: str, namespace: str, queue: str, client_id: str) -> None:
        self.uri = uri
        self.keys = ModeKeys(namespace)
        self.queue = queue
        self.queue_key = self.keys.simple(queue)
        self.client_id = client_id
        self._head = b'{"r":' + orjson.dumps(self.keys.reply(client_id)) + b',"id":"'
        self._conn: Any = None
        self._push_conn: Any = None
        self._listener: ReplyListener | None = None
        self._pushes = GroupCommit(self._push)

    def start(self, on_reply: Callable[[str, bool, Any], None]) -> None:
        """Connect, check the mode, subscribe to the reply channel."""
        self._conn = connect(self.uri, self.keys.namespace)
        self._push_conn = self._conn.connection_pool.make_connection()
        claim_mode(self._conn, self.keys, "simple")

        def handle(message: bytes) -> None:
            replies = orjson.loads(message)
            for reply in replies if isinstance(replies, list) else (replies,):
                on_reply(reply["id"], reply["ok"], reply.get("v"))

        self._listener = ReplyListener(self._conn, handle, channel=self.keys.reply(self.client_id))
        self._listener.start()

    def send(self, jid: str, data: bytes) -> Any:
        """LPUSH the payload; it is the token used to withdraw the job on timeout.

        Group commit: payloads submitted by other threads while a push is on the wire go
        out together in the next LPUSH; each caller returns once its own payload is stored
        (or raises the error that push got).
        """
        payload = self._head + jid.encode() + b'","d":' + data + b"}"
        self._pushes.add(payload)
        return payload

    def _push(self, payloads: list[bytes]) -> None:
        conn = self._push_conn
        try:
            conn.send_packed_command(conn.pack_command("LPUSH", self.queue_key, *payloads))
            reply = conn.read_response()
        except BaseException:
            conn.disconnect()
            raise
        if isinstance(reply, Exception):
            raise reply

    def abandon(self, jid: str, token: Any) -> Outcome | None:
        """Remove the payload if no worker took it yet (nothing else was stored)."""
        self._conn.lrem(self.queue_key, 1, token)
        return None

    def lookup(self, jids: Sequence[str]) -> dict[str, Outcome]:
        """Simple mode stores no results."""
        return {}

    def sweep(self, older_than: float) -> int:
        """Nothing to sweep: simple mode keeps no claims."""
        return 0

    def counts(self) -> dict[str, Any]:
        """Queue length and the done/failed totals of the queue."""
        pipe = self._conn.pipeline(transaction=False)
        pipe.llen(self.queue_key)
        pipe.hmget(self.keys.simple_stats(self.queue), ["done", "failed"])
        waiting, (done, failed) = pipe.execute()
        return {"name": self.queue, "waiting": int(waiting), "done": int(done or 0), "failed": int(failed or 0)}

    def close(self) -> None:
        """Unsubscribe and disconnect."""
        if self._listener is not None:
            self._listener.stop()
        if self._push_conn is not None:
            self._push_conn.disconnect()
        if self._conn is not None:
            self._conn.close()


class SimpleWorkerBackend:
    """Worker side of simple mode."""

    def __init__(self, uri: str, namespace: str, queues: Sequence[str], prefetch: int = 16) -> None:
        self.uri = uri
        self.prefetch = prefetch
        self._local: deque[RawJob] = deque()
        self._acks_since = 0.0
        self.keys = ModeKeys(namespace)
        self.queues = list(queues)
        self.queue_keys = [self.keys.simple(q) for q in self.queues]
        self._by_key = dict(zip(self.queue_keys, self.queues, strict=True))
        self._acks: list[tuple[str, bytes, str, bool]] = []
        self._fetch: Any = None
        self._ctl: Any = None
        self._client_id: int | None = None
        self._lock = threading.Lock()
        self._blmpop = True

    def start(self) -> None:
        """Connect (a dedicated connection for the blocking fetch) and check the mode."""
        self._ctl = connect(self.uri, self.keys.namespace)
        claim_mode(self._ctl, self.keys, "simple")
        version = str(self._ctl.info("server").get("redis_version", "7"))
        self._blmpop = int(version.split(".")[0]) >= 7
        # One raw connection for the blocking fetch: its CLIENT ID is stable (for CLIENT
        # UNBLOCK), and commands go out without the client library's per-command overhead.
        self._fetch = self._ctl.connection_pool.make_connection()

    def _roundtrip(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        conn = self._fetch
        try:
            conn.send_packed_command(conn.pack_commands(commands))
            return [conn.read_response() for _ in commands]
        except BaseException:
            conn.disconnect()
            self._client_id = None
            raise

    def fetch(self, count: int, block: float) -> list[RawJob]:
        """Jobs prefetched earlier first; else send buffered results and BLMPOP up to
        ``max(count, prefetch)`` payloads from the first non-empty queue (strict priority)."""
        if self._local:
            if self._acks and time.monotonic() - self._acks_since > ACK_DELAY:
                self._send_acks()
            return [self._local.popleft() for _ in range(min(count, len(self._local)))]
        if self._client_id is None:
            self._client_id = int(self._roundtrip([("CLIENT", "ID")])[0])
        commands = self._ack_commands()
        if self._blmpop:
            want = max(count, self.prefetch)
            commands.append(("BLMPOP", block, len(self.queue_keys), *self.queue_keys, "RIGHT", "COUNT", want))
        else:  # Redis 6.2: one at a time, still strict priority
            commands.append(("BRPOP", *self.queue_keys, block))
        reply = self._roundtrip(commands)[-1]
        if not reply:
            return []
        key = reply[0].decode()
        items = reply[1] if self._blmpop else [reply[1]]
        queue = self._by_key[key]
        for payload in items:
            msg = orjson.loads(payload)
            self._local.append(RawJob(msg["id"], msg["d"], queue, (payload, msg["r"])))
        return [self._local.popleft() for _ in range(min(count, len(self._local)))]

    def _ack_commands(self) -> list[tuple[Any, ...]]:
        """Commands for the buffered results: one PUBLISH per client (a JSON list when
        several), one counter update per queue."""
        acks, self._acks = self._acks, []
        by_channel: dict[str, list[bytes]] = {}
        counts: dict[tuple[str, str], int] = {}
        for channel, message, queue, ok in acks:
            by_channel.setdefault(channel, []).append(message)
            slot = (queue, "done" if ok else "failed")
            counts[slot] = counts.get(slot, 0) + 1
        commands: list[tuple[Any, ...]] = []
        for channel, messages in by_channel.items():
            body = messages[0] if len(messages) == 1 else b"[" + b",".join(messages) + b"]"
            commands.append(("PUBLISH", channel, body))
        for (queue, name), n in counts.items():
            commands.append(("HINCRBY", self.keys.simple_stats(queue), name, n))
        return commands

    def _send_acks(self, extra: list[tuple[Any, ...]] = ()) -> None:  # type: ignore[assignment]
        commands = self._ack_commands() + list(extra)
        if commands:
            pipe = self._ctl.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            pipe.execute()

    def finish(self, raw: RawJob, ok: bool, value: Any, defer: bool) -> None:
        """Publish the outcome (with the next fetch when ``defer``) and count it."""
        ack = (raw.token[1], reply_message(raw.id, ok, value), raw.queue, ok)
        if defer:
            if not self._acks:
                self._acks_since = time.monotonic()
            self._acks.append(ack)
            return
        pipe = self._ctl.pipeline(transaction=False)
        pipe.publish(ack[0], ack[1])
        pipe.hincrby(self.keys.simple_stats(raw.queue), "done" if ok else "failed", 1)
        pipe.execute()

    def hand_back(self, raw: RawJob) -> None:
        """RPUSH the payload: it is the next one popped from its queue."""
        self._ctl.rpush(self.keys.simple(raw.queue), raw.token[0])

    def unblock(self) -> None:
        """CLIENT UNBLOCK the fetch connection: BLMPOP returns nil, nothing popped is lost."""
        if self._client_id is not None and self._ctl is not None:
            self._ctl.client_unblock(self._client_id)

    def tick(self, running: Sequence[RawJob]) -> None:
        """Nothing periodic in simple mode."""

    def close(self) -> None:
        """Send buffered results, hand back prefetched jobs (in order), disconnect."""
        if self._ctl is not None and (self._acks or self._local):
            back: list[tuple[Any, ...]] = []
            while self._local:  # the oldest ends up at the tail: it is popped first
                raw = self._local.pop()
                back.append(("RPUSH", self.keys.simple(raw.queue), raw.token[0]))
            self._send_acks(back)
        if self._fetch is not None:
            self._fetch.disconnect()
        if self._ctl is not None:
            self._ctl.close()
