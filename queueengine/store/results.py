"""Waiting for a job's outcome: ``Client.wait`` and ``Client.await_result`` are built on ``Results``.

A waiter listens on the job's reply channel (or the client's reply inbox, see
``queueengine.store.replies``) and re-reads the stored state every ``WAIT_POLL`` seconds, so a
missed pub/sub message (or a job put without ``reply=True``) only delays the answer, never
loses it. A Redis restart or failover meanwhile is ridden out: the state is read again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import orjson
import redis

from queueengine.exceptions import JobFailed, JobNotFound, WaitTimeout
from queueengine.store.connection import is_transient
from queueengine.store.pubsub import AsyncSubscriber, Subscriber
from queueengine.store.replies import Inbox
from queueengine.store.session import Session

WAIT_POLL = 0.5
"""Seconds between reads of the stored state while a waiter listens for the reply."""


def _outcome(jid: str, state: Any, result: Any, failure: Any) -> tuple[bool, Any]:
    """(finished, result) from a job record's state, result and failure fields."""
    if state is None:
        raise JobNotFound(f"job {jid} does not exist")
    if state == b"complete":
        return True, orjson.loads(result) if result else None
    if state == b"failed":
        raise JobFailed(jid, orjson.loads(failure) if failure else None)
    return False, None


def _from_reply(jid: str, reply: dict[str, Any]) -> Any:
    if reply.get("state") == "failed":
        raise JobFailed(jid, reply.get("error"))
    return reply.get("result")


class Results:
    """One client's waits: its reply inbox (opened on first use) and per-thread subscriptions."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.inbox: Inbox | None = None
        self._lock = threading.Lock()
        self._local = threading.local()

    def reply_arg(self, jid: str) -> str | int:
        """What ``put(..., reply=True)`` sends as its reply argument: the inbox's name once this
        client has one (then the reply is expected there), else 1."""
        inbox = self.inbox
        if inbox is None:
            return 1
        inbox.expect(jid)
        return inbox.name

    def open_inbox(self) -> Inbox | None:
        """The reply inbox, opened on first use (None when Redis refuses the subscription)."""
        inbox = self.inbox
        if inbox is None:
            with self._lock:
                inbox = self.inbox
                if inbox is None:
                    try:
                        inbox = self.inbox = Inbox(self.session)
                    except (redis.RedisError, OSError):
                        return None
        return inbox

    def close(self) -> None:
        """Drop the inbox and this thread's reply subscription."""
        inbox, self.inbox = self.inbox, None
        if inbox is not None:
            inbox.close()
        ps = getattr(self._local, "pubsub", None)
        if ps is not None:
            ps.close()
            self._local.pubsub = None

    def finished(self, jid: str) -> tuple[bool, Any]:
        """(True, result) when the job completed, (False, None) while it has not finished;
        JobFailed / JobNotFound otherwise."""
        state, result, failure = self.session.execute("HMGET", self.session.keys.job(jid), "state", "result", "failure")
        return _outcome(jid, state, result, failure)

    def _finished_or_later(self, jid: str) -> tuple[bool, Any]:
        try:
            return self.finished(jid)
        except redis.RedisError as exc:  # Redis restarting / failing over: read again later
            if not is_transient(exc):
                raise
            return False, None

    def wait(self, jid: str, timeout: float | None) -> Any:
        """Block until the job finishes; its result, or JobFailed, WaitTimeout, JobNotFound."""
        deadline = None if timeout is None else time.monotonic() + timeout
        inbox = self.inbox
        if inbox is not None and inbox.expects(jid):
            return self._wait_inbox(inbox, jid, timeout, deadline)
        self.open_inbox()  # the jobs this client puts from now on reply to it
        done, value = self.finished(jid)
        if done:
            return value
        channel = self.session.keys.reply(jid)
        pubsub = self._reply_pubsub()
        pubsub.subscribe(channel)
        try:
            with contextlib.suppress(redis.RedisError, OSError):
                pubsub.connect()  # subscribed before the state is read again (else get_message retries)
            while True:
                done, value = self._finished_or_later(jid)
                if done:
                    return value
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise WaitTimeout(f"job {jid} did not finish within {timeout} s")
                message = self._listen(pubsub, channel, WAIT_POLL if left is None else min(WAIT_POLL, left))
                if message is not None:
                    return _from_reply(jid, orjson.loads(message))
        finally:
            pubsub.unsubscribe(channel)

    @staticmethod
    def _listen(pubsub: Subscriber, channel: bytes | str, seconds: float) -> bytes | None:
        """The first message on ``channel`` within ``seconds``, or None."""
        end = time.monotonic() + seconds
        while True:
            msg = pubsub.get_message(timeout=max(0.0, end - time.monotonic()))
            if msg is not None and msg[0] == channel:
                data: bytes = msg[1]
                return data
            if time.monotonic() >= end:
                return None

    def _wait_inbox(self, inbox: Inbox, jid: str, timeout: float | None, deadline: float | None) -> Any:
        """``wait`` for a job whose reply comes to the inbox: read it there; re-read the stored
        state every WAIT_POLL seconds (and at once if the subscription had to reconnect)."""
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            step = WAIT_POLL if left is None else max(0.0, min(WAIT_POLL, left))
            if inbox.expects(jid):
                reply = inbox.take(jid, step)
                if reply is not None:
                    return _from_reply(jid, reply)
            else:
                time.sleep(min(step, 0.05))
            done, value = self._finished_or_later(jid)
            if done:
                return value
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"job {jid} did not finish within {timeout} s")

    def _reply_pubsub(self) -> Subscriber:
        """A per-thread subscription kept for ``wait`` (subscribing is cheap, connecting is not)."""
        ps: Subscriber | None = getattr(self._local, "pubsub", None)
        if ps is None:
            ps = Subscriber(self.session.endpoint)
            self._local.pubsub = ps
        return ps

    async def await_result(self, jid: str, timeout: float | None) -> Any:
        """The asyncio version of ``wait`` (same results and exceptions)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        conn = self.session.endpoint.asyncio()
        pubsub = AsyncSubscriber(self.session.endpoint, channels=(self.session.keys.reply(jid),))
        with contextlib.suppress(redis.RedisError, OSError):
            await pubsub.connect()
        key = self.session.keys.job(jid)
        try:
            while True:
                try:
                    state, result, failure = await conn.hmget(key, ["state", "result", "failure"])
                    done, value = _outcome(jid, state, result, failure)
                except redis.RedisError as exc:  # Redis restarting / failing over: read again later
                    if not is_transient(exc):
                        raise
                    done, value = False, None
                if done:
                    return value
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise WaitTimeout(f"job {jid} did not finish within {timeout} s")
                end = time.monotonic() + (WAIT_POLL if left is None else min(WAIT_POLL, left))
                while time.monotonic() < end:
                    msg = await pubsub.get_message(timeout=max(0.0, end - time.monotonic()))
                    if msg is not None:
                        return _from_reply(jid, orjson.loads(msg[1]))
                    await asyncio.sleep(0)
        finally:
            await pubsub.aclose()
            await conn.aclose()
