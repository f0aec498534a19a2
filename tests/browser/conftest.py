"""A real dashboard for the browser tests: daphne serving config.asgi in a child process (its own
SQLite file, the session's Redis, channels_redis), and Debian's Chromium driven by Playwright.

No browser is ever downloaded: Playwright launches /usr/bin/chromium.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from queueengine.devtools.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
NAMESPACE = "browser"
PASSWORD = "browser-tests-pw"


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daphne exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"daphne did not listen on port {port} within {timeout} s")


@pytest.fixture(scope="session")
def dashboard_env(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> dict[str, str]:
    """Environment of the dashboard's processes (settings: config.settings)."""
    data = tmp_path_factory.mktemp("dashboard")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "QE_DATA_DIR": str(data),
           "REDIS_URL": redis_url, "QE_NAMESPACE": NAMESPACE, "CHANNEL_LAYER": "redis", "DJANGO_DEBUG": "1",
           "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SECRET_KEY", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    script = ("from django.contrib.auth import get_user_model as g; "
              f"g().objects.create_superuser('admin', 'admin@example.com', {PASSWORD!r})")
    subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=True)
    return env


@pytest.fixture(scope="module")
def dashboard_url(dashboard_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of daphne serving the project (per module: no server is left talking to the
    session's Redis while other tests count its commands or snapshot its keyspace)."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("daphne") / "daphne.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                             "config.asgi:application"], cwd=ROOT, env=dashboard_env, stdout=log, stderr=log)
    try:
        _wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless. Module-scoped: Playwright's sync API keeps an event loop
    running in the main thread while it is open, which would break every asyncio test that
    runs after the browser tests."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/system_packages.sh does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def login_state(browser: Any, dashboard_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Log in once through the admin login form; later pages reuse the session cookie."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(dashboard_url + "/jobs/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(dashboard_url + "/jobs/")
    path = str(tmp_path_factory.mktemp("browser") / "state.json")
    context.storage_state(path=path)
    context.close()
    return path


@pytest.fixture
def page(browser: Any, login_state: str, redis_conn: Any) -> Iterator[Any]:
    """A logged-in page (the Redis database is flushed before the test)."""
    context = browser.new_context(storage_state=login_state, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)   # a loaded machine (make stress-test) is slow, not broken
    p = context.new_page()
    p.on("dialog", lambda dialog: dialog.accept())
    yield p
    context.close()


@pytest.fixture
def engine_b(redis_url: str, redis_conn: Any) -> Iterator[Any]:
    """An engine client on the browser dashboard's namespace."""
    from queueengine import Client

    client = Client.from_url(redis_url, namespace=NAMESPACE, worker_name="browser-tests")
    yield client
    client.close()
