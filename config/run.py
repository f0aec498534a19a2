"""``make run``: Redis (found or embedded), migrations, an admin user, demo jobs, daphne and a worker.

Run as ``python -m config.run`` from the repository root (``make run`` does). Ctrl-C stops
everything it started, the embedded Redis last, and leaves no process behind.

Environment: ``REDIS_URL`` (use that Redis instead of an embedded one), ``PORT`` (default 8000),
``DEMO=0`` (do not seed demo jobs on the first run), ``QE_DATA_DIR`` (default ``.data/``),
``DEBUG=1`` (Django's DEBUG on: debug error pages; off by default, static files are served either way).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import redis

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("QE_DATA_DIR", ROOT / ".data"))
QUEUES = ("high", "default", "low", "reports")


def say(message: str) -> None:
    """Print a line of the launcher's own output."""
    print(f"[run] {message}", flush=True)


def check_reachable(url: str) -> str | None:
    """Return None when Redis at ``url`` answers PING, else the reason it does not."""
    try:
        from queueengine.store.connection import connect

        conn = connect(url, socket_connect_timeout=2, socket_timeout=2)  # redis://, redis+cluster://, redis+sentinel://
        conn.ping()
        conn.close()
        return None
    except (redis.exceptions.RedisError, ValueError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"


def resolve_redis() -> tuple[str, object | None]:
    """REDIS_URL if set and reachable (else exit with advice); otherwise an embedded server."""
    url = os.environ.get("REDIS_URL")
    if url:
        problem = check_reachable(url)
        if problem:
            say(f"cannot reach Redis at REDIS_URL={url} ({problem}).")
            say("fix: start Redis there, correct REDIS_URL, or unset REDIS_URL to use an embedded server.")
            sys.exit(1)
        say(f"using Redis at {url}")
        return url, None
    from queueengine.devtools.embedded import EmbeddedRedis, free_port

    redis_dir = DATA_DIR / "redis"
    port_file = redis_dir / "port"
    port = int(port_file.read_text()) if port_file.exists() else 0
    if not port or check_reachable(f"redis://127.0.0.1:{port}/0") is None:
        port = free_port()  # the remembered port is taken by someone else: pick another
    server = EmbeddedRedis(redis_dir, port=port, appendonly=True)
    url = server.start()
    port_file.write_text(str(server.port))
    say(f"started embedded Redis ({server.executable}) on {url}, data and AOF in {redis_dir}")
    return url, server


def manage(*args: str) -> None:
    """Run a management command in a child process; stop the launcher if it fails."""
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"'manage.py {' '.join(args)}' failed with exit code {result.returncode}")


def ensure_admin() -> str:
    """Create the admin user on the first run; return the login line to print."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    users = get_user_model()
    if users.objects.filter(is_superuser=True).exists():
        return "log in with the admin account created on the first run (reset: make manage ARGS=\"changepassword admin\")"
    password = secrets.token_urlsafe(12)
    users.objects.create_superuser("admin", "admin@example.com", password)
    return f"log in as  admin / {password}   (shown once: note it down)"


def seed_demo_once() -> None:
    """Seed the demo workload on the first run unless DEMO=0."""
    marker = DATA_DIR / "demo-seeded"
    if os.environ.get("DEMO", "1") == "0" or marker.exists():
        return
    from config.demo import seed

    summary = seed(os.environ["REDIS_URL"], os.environ.get("QE_NAMESPACE", "default"))
    marker.write_text(summary)
    say(f"seeded demo jobs: {summary}")


def start(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
    """Start a child in its own process group so that shutdown order is ours to choose."""
    say(f"starting {name}: {' '.join(argv)}")
    return subprocess.Popen(argv, cwd=ROOT, start_new_session=True)


def stop(children: list[tuple[str, subprocess.Popen[bytes]]], timeout: float = 10.0) -> None:
    """SIGTERM every child, wait, then SIGKILL what is left."""
    for _, proc in children:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for name, proc in children:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop in {timeout:.0f}s: killing it")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def debug_switch() -> bool:
    """``DEBUG=1`` turns Django's DEBUG on for the children (``DJANGO_DEBUG`` wins when both are set)."""
    wanted = os.environ.get("DEBUG", "").strip().lower() in ("1", "true", "yes", "on")
    os.environ.setdefault("DJANGO_DEBUG", "1" if wanted else "0")
    return os.environ["DJANGO_DEBUG"] == "1"


def main() -> int:
    """Bring everything up, wait for Ctrl-C (or a child's death), bring everything down."""
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    port = os.environ.get("PORT", "8000")
    debug = debug_switch()
    url, server = resolve_redis()
    os.environ["REDIS_URL"] = url
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        manage("migrate", "--noinput", "-v", "0")
        login = ensure_admin()
        seed_demo_once()
        children.append(("daphne", start("daphne", [
            sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", port, "config.asgi:application",
        ])))
        worker_args = [sys.executable, "manage.py", "qe_worker", "--concurrency", "4"]
        for queue in QUEUES:
            worker_args += ["-q", queue]
        children.append(("worker", start("worker", worker_args)))
        say("")
        say(f"dashboard: http://127.0.0.1:{port}/jobs/     admin: http://127.0.0.1:{port}/admin/")
        say(login)
        say("DEBUG is on (debug error pages list every URL: never expose this server)" if debug
            else "DEBUG is off (DEBUG=1 make run turns it on)")
        say("second terminal: make shell (the venv, REDIS_URL of this Redis) or make manage ARGS=\"qe_stats\"")
        say("Ctrl-C stops everything.")
        while not stopping:
            for name, proc in children:
                if proc.poll() is not None:
                    say(f"{name} exited with code {proc.returncode}; stopping the rest")
                    stopping = True
            time.sleep(0.2)
        return 0
    finally:
        say("stopping...")
        stop(children)
        if server is not None:
            server.stop()  # type: ignore[attr-defined]
            say("embedded Redis stopped (data kept in .data/redis)")
        say("stopped.")


if __name__ == "__main__":
    sys.exit(main())
