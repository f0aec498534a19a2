"""The Lua library: assembled from ``lua/*.lua`` in a fixed order, loaded once, called by name.

The files are concatenated with a ``-- file: <name>`` marker before each, and an offset
table maps a line of the assembled code back to its file, so an error raised at
``user_script:412`` is reported as ``job.lua:37``. Errors the library raises on purpose
(``QE:<Kind>: message``) become the matching :mod:`queueengine.exceptions` class.

Two ways to run the same code:

* Redis >= 7: ``FUNCTION LOAD`` of a library ``queueengine_<sha8>`` once per server, then
  ``FCALL qe_<sha8> 1 <prefix> <command> <now> <args...>``. The library's functions are
  built once, so a call costs only its own work.
* Redis 6.2 (no functions): the same code as a script, ``EVALSHA <sha> 1 <prefix> ...``
  (reloaded on NOSCRIPT); its tail calls ``redis.replicate_commands()`` so TIME can be read
  before writes.
"""

from __future__ import annotations

import hashlib
import re
import threading
from importlib import resources
from typing import Any, cast

import redis
import redis.cluster

from queueengine.exceptions import KINDS, OutOfMemory, QueueEngineError, ScriptError
from queueengine.store.connection import is_transient

LUA_FILES: tuple[str, ...] = (
    "base.lua",
    "config.lua",
    "job.lua",
    "lifecycle.lua",
    "tags.lua",
    "queue.lua",
    "bounds.lua",
    "pop.lua",
    "stats.lua",
    "metrics.lua",
    "recurring.lua",
    "throttle.lua",
    "worker.lua",
    "views.lua",
    "migrate.lua",
    "classindex.lua",
    "search.lua",
    "api.lua",
)
"""Load order; ``api.lua`` (the command table and dispatcher) must come last."""

_LINE = re.compile(r"@?user_(script|function):(\d+):\s*")
_TAIL = re.compile(r"\s*script: [\w-]+, on @user_(script|function):\d+\.?\s*$")
_KIND = re.compile(r"QE:(\w+):\s*(.*)", re.S)

FUNCTION = "function"
SCRIPT = "script"


class LuaLibrary:
    """The assembled code, its SHA, the function name and the line -> file:line table."""

    def __init__(self) -> None:
        parts: list[str] = []
        self.offsets: list[tuple[int, str]] = []  # (first line of the file, file name)
        line = 1
        pkg = resources.files("queueengine.store") / "lua"
        for name in LUA_FILES:
            text = (pkg / name).read_text(encoding="utf-8")
            if not text.endswith("\n"):
                text += "\n"
            parts.append(f"-- file: {name}\n")
            line += 1
            self.offsets.append((line, name))
            parts.append(text)
            line += text.count("\n")
        body = "".join(parts)
        self.sha_body = hashlib.sha1(body.encode("utf-8")).hexdigest()
        tag = self.sha_body[:12]
        self.library_name = f"queueengine_{tag}"
        self.function_name = f"qe_{tag}"
        self.source = (
            body + "if redis.replicate_commands ~= nil then redis.replicate_commands() end\n"
            "return QE.dispatch(KEYS, ARGV)\n"
        )
        self.sha = hashlib.sha1(self.source.encode("utf-8")).hexdigest()
        self.function_source = (
            f"#!lua name={self.library_name}\n" + body
            + f"redis.register_function('{self.function_name}', function(keys, args) "
            "return QE.dispatch(keys, args) end)\n"
        )
        self._modes: dict[int, str] = {}
        self._lock = threading.Lock()

    def locate(self, line: int, kind: str = "script") -> str:
        """``file.lua:N`` for a line of the assembled code (function code has one more line)."""
        if kind == "function":
            line -= 1
        found = f"lua:{line}"
        for first, name in self.offsets:
            if line >= first:
                found = f"{name}:{line - first + 1}"
            else:
                break
        return found

    def translate(self, error: redis.ResponseError) -> QueueEngineError:
        """Turn a Redis script/function error into the engine's typed exception."""
        text = str(error)
        location = None
        matches = list(_LINE.finditer(text))  # Redis 6.2 prefixes a second position: use the last
        if matches:
            m = matches[-1]
            location = self.locate(int(m.group(2)), m.group(1))
            text = text[m.end():]
        text = _TAIL.sub("", text).strip()
        if isinstance(error, redis.exceptions.OutOfMemoryError) or "OOM command not allowed" in text:
            return OutOfMemory("Redis reached its maxmemory limit and refuses writes (maxmemory-policy "
                               "noeviction); the command changed nothing. Free memory or raise maxmemory.",
                               location=location)
        k = _KIND.search(text)
        if k and k.group(1) in KINDS:
            return KINDS[k.group(1)](k.group(2).strip(), location=location)
        if k:
            return ScriptError(k.group(2).strip(), location=location)
        return ScriptError(text, location=location)

    # ------------------------------------------------------------------ loading
    def mode(self, conn: redis.Redis) -> str:
        """How this server runs the library (loading it on first use)."""
        key = pool_id(conn)
        mode = self._modes.get(key)
        if mode is None:
            with self._lock:
                mode = self._modes.get(key)
                if mode is None:
                    mode = self.load(conn)
                    self._modes[key] = mode
        return mode

    def load(self, conn: redis.Redis) -> str:
        """Register the library (FUNCTION LOAD) or, without functions, the script.

        On a cluster, on every primary (a call may go to any of them, after a failover too).
        """
        if isinstance(conn, redis.RedisCluster):
            modes = {self.load(node.redis_connection) for node in conn.get_primaries()}
            return SCRIPT if SCRIPT in modes else FUNCTION
        try:
            conn.function_load(self.function_source)
            return FUNCTION
        except redis.ResponseError as exc:
            text = str(exc)
            if "already exists" in text:
                return FUNCTION
            if "unknown command" not in text.lower() and "unknown subcommand" not in text.lower():
                raise self.translate(exc) from None
        conn.script_load(self.source)
        return SCRIPT

    def send(self, target: Any, mode: str, prefix: str, command: str, now: str, *args: Any) -> Any:
        """Issue the call on a connection or a pipeline."""
        if mode == FUNCTION:
            return target.fcall(self.function_name, 1, prefix, command, now, *args)
        if isinstance(target, redis.cluster.ClusterPipeline):  # it refuses .evalsha(); routes the command
            return cast(Any, target).execute_command("EVALSHA", self.sha, 1, prefix, command, now, *args)
        return target.evalsha(self.sha, 1, prefix, command, now, *args)

    @staticmethod
    def is_missing(exc: BaseException) -> bool:
        """The server lost the library/script (restart, FLUSH)."""
        return isinstance(exc, redis.exceptions.NoScriptError) or (
            isinstance(exc, redis.ResponseError) and "Function not found" in str(exc)
        )

    def call(self, conn: redis.Redis, prefix: str, command: str, now: str, *args: Any, via: Any = None) -> Any:
        """Run one command; reload once if the server lost the code; typed errors. ``via``: an
        object with ``fcall``/``evalsha`` that sends on ``conn``'s server (queueengine.store.direct)."""
        mode = self.mode(conn)
        target = conn if via is None else via
        try:
            try:
                return self.send(target, mode, prefix, command, now, *args)
            except redis.ResponseError as exc:
                if not self.is_missing(exc):
                    raise
                mode = self.reload(conn)
                return self.send(target, mode, prefix, command, now, *args)
        except redis.ResponseError as exc:
            if is_transient(exc):
                raise  # Redis changing hands (READONLY, CLUSTERDOWN, UNBLOCKED...): the caller retries
            raise self.translate(exc) from None

    def reload(self, conn: redis.Redis) -> str:
        """Register the code again on a server that lost it; returns the mode."""
        mode = self._modes[pool_id(conn)] = self.load(conn)
        return mode

    def forget(self, conn: Any) -> None:
        """Drop what is known about a server's mode (it lost the code): reload on next use."""
        self._modes.pop(pool_id(conn), None)


def pool_id(conn: Any) -> int:
    """The cache key of a client: its connection pool (a RedisCluster has none: itself)."""
    return id(getattr(conn, "connection_pool", conn))


_LIBRARY: LuaLibrary | None = None


def library() -> LuaLibrary:
    """The process-wide assembled library (built on first use)."""
    global _LIBRARY
    if _LIBRARY is None:
        _LIBRARY = LuaLibrary()
    return _LIBRARY
