"""A command is never sent twice when it may have run once (queueengine.store.direct).

Between the client and a real Redis sits a real TCP proxy that can lose a reply: it forwards a
command that carries a marker, then closes the client's side before the reply comes back (a
network blip after the server ran the command). A pop whose reply is lost must not pop a second
job; a completion whose reply is lost must not be sent again; a repeat-safe put is repeated
create-only. A connection the server closed while it sat idle is made anew before it is used, so
that ordinary case costs no error at all.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
import redis

from queueengine import Client
from queueengine.store import direct


class LossyProxy:
    """Relays TCP between clients and Redis; ``lose_reply_to(marker)`` makes the next command
    containing ``marker`` reach Redis while its reply is dropped with the client connection."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.marker: bytes | None = None
        self.lost = threading.Event()
        self.forwarded = threading.Event()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def lose_reply_to(self, marker: bytes) -> None:
        self.lost.clear()
        self.marker = marker

    def drop_all(self) -> None:
        """Close every relayed connection (what a server restart does to idle clients)."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close(self) -> None:
        self.listener.close()
        self.drop_all()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self._lock:
                self._pairs.append((client, server))
            threading.Thread(target=self._upstream, args=(client, server), daemon=True).start()
            threading.Thread(target=self._downstream, args=(server, client), daemon=True).start()

    def _upstream(self, client: socket.socket, server: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                lose = self.marker is not None and self.marker in data
                if lose:
                    self.marker = None
                    client.shutdown(socket.SHUT_RDWR)   # the client hears nothing more ...
                    client.close()
                server.sendall(data)                    # ... while Redis runs the command
                if lose:
                    self.lost.set()
                    return
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_WR)

    @staticmethod
    def _downstream(server: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                client.sendall(data)


@pytest.fixture
def proxy(redis_url: str, redis_conn: redis.Redis) -> Iterator[LossyProxy]:
    kwargs = redis_conn.connection_pool.connection_kwargs
    p = LossyProxy(kwargs.get("host", "127.0.0.1"), int(kwargs.get("port", 6379)))
    yield p
    p.close()


@pytest.fixture
def through_proxy(proxy: LossyProxy, redis_conn: redis.Redis) -> Iterator[Client]:
    db = redis_conn.connection_pool.connection_kwargs.get("db", 0)
    client = Client.from_url(f"redis://127.0.0.1:{proxy.port}/{db}", namespace="lossy", worker_name="w1")
    yield client
    client.close()


@pytest.fixture
def direct_client(redis_url: str) -> Iterator[Client]:
    client = Client.from_url(redis_url, namespace="lossy", worker_name="observer")
    yield client
    client.close()


def test_a_pop_whose_reply_is_lost_pops_nothing_more(
        proxy: LossyProxy, through_proxy: Client, direct_client: Client) -> None:
    q = through_proxy.queues["lossy-pop"]
    first, second = q.put("k", {"n": 1}), q.put("k", {"n": 2})
    proxy.lose_reply_to(b"lossy-pop")
    with pytest.raises(redis.exceptions.ConnectionError):
        q.pop()
    assert proxy.lost.wait(10)
    states = {jid: direct_client.jobs[jid].state for jid in (first, second)}
    assert states == {first: "running", second: "waiting"}, "the pop was sent twice"
    popped = q.pop()                                     # the client carries on, on a new connection
    assert popped is not None and popped.jid == second


def test_a_completion_whose_reply_is_lost_is_not_sent_again(
        proxy: LossyProxy, through_proxy: Client, direct_client: Client) -> None:
    """The caller hears that the reply was lost (a second send would have answered WrongState,
    a completion it never made); the job is complete once."""
    q = through_proxy.queues["lossy-done"]
    jid = q.put("k", {})
    job = q.pop()
    assert job is not None
    proxy.lose_reply_to(b"lossy-done")
    with pytest.raises(redis.exceptions.ConnectionError):
        job.complete({"ok": True})
    assert proxy.lost.wait(10)
    done = direct_client.jobs[jid]
    assert done.state == "complete" and done.result == {"ok": True}
    assert [h["what"] for h in done.history].count("done") == 1, done.history


def test_a_put_whose_reply_is_lost_is_repeated_create_only(
        proxy: LossyProxy, through_proxy: Client, direct_client: Client) -> None:
    q = through_proxy.queues["lossy-put"]
    proxy.lose_reply_to(b"lossy-put")
    jid = q.put("k", {"n": 1}, jid="exactly-once")      # safe to repeat: the retry finds it there
    assert proxy.lost.wait(10)
    assert jid == "exactly-once"
    assert len(direct_client.queues["lossy-put"]) == 1
    assert [h["what"] for h in direct_client.jobs[jid].history].count("put") == 1


def test_a_connection_closed_while_idle_is_made_anew_before_use(
        proxy: LossyProxy, through_proxy: Client, direct_client: Client,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The server closed the idle connection (restart, idle timeout): the next command, even one
    not safe to repeat, goes out on a new connection instead of failing."""
    monkeypatch.setattr(direct, "IDLE_CHECK", 0.0)       # check before every command
    q = through_proxy.queues["lossy-idle"]
    q.put("k", {"n": 1})
    proxy.drop_all()
    job = q.pop()                                        # not repeat-safe: it must not meet the dead socket
    assert job is not None and direct_client.jobs[job.jid].state == "running"
