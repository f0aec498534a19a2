"""The dashboard's reserved keys (``dash:*`` in the ``queueengine/store/keys.py`` docstring).

The engine never writes there; these helpers are how a dashboard does, so it needs no raw
Redis and no key names of its own:

* ``client.operator.progress``: progress records of long operations (``dash:op:<id>`` hashes,
  each kept ``ttl`` seconds after its last write) and an index of recent ones (``dash:ops``,
  id -> start time, pruned past the ttl);
* ``client.operator.live``: what several dashboard processes share for live updates: a leader
  lease (``dash:live-leader``, a token with a TTL), the topics open tabs follow
  (``dash:live-topics``, each entry expiring) and the server's run id (a different one means
  a restart or failover), sampled together in one round trip by ``sample()``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.typing import EncodableT, FieldT

from queueengine.exceptions import InvalidArgument
from queueengine.store import args as _args
from queueengine.store.session import Session

DAY = 86400

FieldValue = str | int | float


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _seconds(value: Any, what: str) -> float:
    seconds = _args.number(value, what)
    if seconds <= 0 or seconds > 10 * 365 * DAY:
        raise InvalidArgument(f"{what} must be > 0 and at most ten years, got {value!r}")
    return seconds


def _fields(fields: Any) -> dict[FieldT, EncodableT]:
    if not isinstance(fields, Mapping) or not fields:
        raise InvalidArgument(f"fields must be a non-empty mapping of names to str, int or float, got {fields!r}")
    out: dict[FieldT, EncodableT] = {}
    for name, value in fields.items():
        _args.name(name, "fields")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or (
                isinstance(value, float) and not math.isfinite(value)):
            raise InvalidArgument(f"fields: {name} must be a str, an int or a finite float, got {value!r}")
        out[name] = value if isinstance(value, str) else repr(value)
    return out


class ProgressRecords:
    """``client.operator.progress``: records of long-running operator work (a group retry-all),
    readable by every dashboard process while it runs and for ``ttl`` seconds after."""

    def __init__(self, store: Session) -> None:
        self.store = store

    def _key(self, record_id: str) -> str:
        return self.store.keys.dash_record(record_id)

    def create(self, record_id: str, fields: Mapping[str, FieldValue], ttl: float = DAY) -> None:
        """Store a new record (numbers as text) kept ``ttl`` seconds and index it as started now;
        index entries older than ``ttl`` are dropped. One round trip."""
        key = self._key(_args.name(record_id, "record_id"))
        mapping, seconds = _fields(fields), _seconds(ttl, "ttl")
        now = time.time()
        pipe = self.store.redis.pipeline(transaction=False)
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, math.ceil(seconds))
        pipe.zadd(self.store.keys.dash_records, {record_id: now})
        pipe.zremrangebyscore(self.store.keys.dash_records, "-inf", now - seconds)
        pipe.execute()

    def update(self, record_id: str, fields: Mapping[str, FieldValue], ttl: float = DAY) -> None:
        """Overwrite some fields of a record and keep it ``ttl`` seconds from now."""
        key = self._key(_args.name(record_id, "record_id"))
        mapping, seconds = _fields(fields), _seconds(ttl, "ttl")
        pipe = self.store.redis.pipeline(transaction=False)
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, math.ceil(seconds))
        pipe.execute()

    def get(self, record_id: str) -> dict[str, str] | None:
        """A record's fields as text, or None when there is none (never made, or expired)."""
        raw = self.store.redis.hgetall(self._key(_args.existing_name(record_id, "record_id")))
        return {_text(k): _text(v) for k, v in raw.items()} if raw else None

    def recent(self, count: int = 50) -> list[str]:
        """Ids of the ``count`` most recently started records, newest first (some may have
        expired since: ``get`` then gives None)."""
        count = _args.integer(count, "count", 1, 1000)
        return [_text(i) for i in self.store.redis.zrevrange(self.store.keys.dash_records, 0, count - 1)]


@dataclass(frozen=True)
class LiveSample:
    """One ``LiveCoordination.sample``: who holds the lease now (``acquired``: this sample took
    it), every topic some process follows, and the run id of the server that answered."""

    holder: str | None
    acquired: bool
    watched: list[str]
    run_id: str | None


class LiveCoordination:
    """``client.operator.live``: a leader lease, an expiring interest set and the server's run
    id, shared by the dashboard processes of one namespace."""

    def __init__(self, store: Session) -> None:
        self.store = store

    @property
    def _leader(self) -> str:
        return self.store.keys.dash_leader

    @property
    def _interest(self) -> str:
        return self.store.keys.dash_interest

    def acquire(self, token: str, ttl: float) -> bool:
        """Take the lease for ``ttl`` seconds when nobody holds it; True when ``token`` got it."""
        ms = self._lease_ms(token, ttl)
        return bool(self.store.redis.set(self._leader, token, nx=True, px=ms))

    def renew(self, token: str, ttl: float) -> bool:
        """Extend the lease to ``ttl`` seconds from now when ``token`` holds it (True), else
        leave it alone (False)."""
        ms = self._lease_ms(token, ttl)
        if self.holder() != token:
            return False
        return bool(self.store.redis.pexpire(self._leader, ms))

    def holder(self) -> str | None:
        """The token holding the lease, or None."""
        raw = self.store.redis.get(self._leader)
        return None if raw is None else _text(raw)

    def release(self, token: str) -> bool:
        """Give the lease up if ``token`` holds it (True), so another process leads at once."""
        _args.name(token, "token")
        if self.holder() != token:
            return False
        return bool(self.store.redis.delete(self._leader))

    def follow(self, topics: Sequence[str], ttl: float) -> None:
        """Record that this process's tabs follow ``topics`` for the next ``ttl`` seconds."""
        names, seconds = _args.names(topics, "topics"), _seconds(ttl, "ttl")
        if names:
            self.store.redis.zadd(self._interest, {t: time.time() + seconds for t in names})

    def followed(self) -> list[str]:
        """Every topic some process follows (expired entries are dropped first)."""
        pipe = self.store.redis.pipeline(transaction=False)
        pipe.zremrangebyscore(self._interest, "-inf", time.time())
        pipe.zrange(self._interest, 0, -1)
        return [_text(t) for t in pipe.execute()[-1]]

    def run_id(self) -> str | None:
        """The run id of the Redis server answering (it changes on a restart or failover)."""
        run_id = self.store.redis.info("server").get("run_id")
        return None if run_id is None else str(run_id)

    def sample(self, token: str, topics: Sequence[str], lease: float, interest: float,
               renew: bool = False) -> LiveSample:
        """All of the above in one round trip: take the lease for ``lease`` seconds if it is free
        (and, with ``renew``, extend it: pass True while this process believes it leads),
        follow ``topics`` for ``interest`` seconds, read the holder, the followed topics and the
        run id. With ``renew`` the extension is not conditional: a lease another process took
        meanwhile gets ``lease`` seconds more once, which only delays a takeover."""
        ms = self._lease_ms(token, lease, "lease")
        names, seconds = _args.names(topics, "topics"), _seconds(interest, "interest")
        now = time.time()
        pipe = self.store.redis.pipeline(transaction=False)
        pipe.set(self._leader, token, nx=True, px=ms)
        if renew:
            pipe.pexpire(self._leader, ms)
        pipe.get(self._leader)
        if names:
            pipe.zadd(self._interest, {t: now + seconds for t in names})
        pipe.zremrangebyscore(self._interest, "-inf", now)
        pipe.zrange(self._interest, 0, -1)
        pipe.info("server")
        replies = pipe.execute()
        holder = replies[2 if renew else 1]
        run_id = replies[-1].get("run_id")
        return LiveSample(holder=None if holder is None else _text(holder), acquired=bool(replies[0]),
                          watched=[_text(t) for t in replies[-2]], run_id=None if run_id is None else str(run_id))

    @staticmethod
    def _lease_ms(token: Any, ttl: Any, what: str = "ttl") -> int:
        """The lease in ms, once ``token`` and the lease length (argument ``what``) are checked."""
        _args.name(token, "token")
        return max(1, round(_seconds(ttl, what) * 1000))


__all__ = ["DAY", "LiveCoordination", "LiveSample", "ProgressRecords"]
