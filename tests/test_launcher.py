"""`make run`'s launcher (config/run.py) and the environment scripts: the whole stack comes up,
Ctrl-C leaves no process behind, and bad configuration says what to do."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from queueengine.devtools.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent


def processes_with(marker: str) -> list[int]:
    """PIDs whose environment holds ``marker`` (the launcher's children inherit it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def launcher_env(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE", "CHANNEL_LAYER",
                                                            "DJANGO_SECRET_KEY", "QE_NAMESPACE", "DEBUG",
                                                            "DJANGO_DEBUG", "DJANGO_SERVE_STATIC")}
    return {**env, "QE_DATA_DIR": str(data), "PYTHONPATH": str(ROOT), "QE_LAUNCHER_TEST": str(data), **extra}


def run_until_ready(env: dict[str, str], port: int) -> tuple[subprocess.Popen[str], str]:
    """Start the launcher and read its output until it says it is up (and daphne listens)."""
    proc = subprocess.Popen([sys.executable, "-m", "config.run"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C stops everything" in line:
            break
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    return proc, "".join(lines)


def interrupt(proc: subprocess.Popen[str]) -> str:
    """Ctrl-C, as a terminal sends it; the rest of the output."""
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    return rest


@pytest.mark.slow
def test_make_run_brings_everything_up_and_ctrl_c_stops_it_all(tmp_path: Path) -> None:
    """Embedded Redis, migrations, an admin login printed once, the demo, daphne and a worker;
    the dashboard answers; SIGINT stops every process it started; a restart keeps the data."""
    port = free_port()
    env = launcher_env(tmp_path, PORT=str(port))
    marker = f"QE_LAUNCHER_TEST={tmp_path}"
    proc, out = run_until_ready(env, port)
    try:
        assert "started embedded Redis" in out and "seeded demo jobs" in out, out
        assert "log in as  admin / " in out and f"http://127.0.0.1:{port}/jobs/" in out
        response = urllib.request.build_opener(NoRedirect()).open(f"http://127.0.0.1:{port}/jobs/")
        assert response.status == 302 and "/admin/login/" in response.headers["Location"]
        assert len(processes_with(marker)) >= 3      # daphne, the worker, redis-server
        assert "DEBUG is off" in out, out            # DEBUG off by default, static files still served
        css = urllib.request.urlopen(f"http://127.0.0.1:{port}/static/jobadmin/dashboard.css")
        assert css.status == 200 and b"--accent" in css.read()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/no-such-page/")
        assert missing.value.code == 404 and b"URLconf" not in missing.value.read()  # no debug page
    finally:
        rest = interrupt(proc)
    assert "embedded Redis stopped" in rest and "stopped." in rest
    assert processes_with(marker) == []
    proc, out = run_until_ready(env, port)           # the second run finds everything where it was
    try:
        assert "created on the first run" in out and "seeded demo jobs" not in out, out
        assert "log in as  admin / " not in out
    finally:
        interrupt(proc)
    assert processes_with(marker) == []


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None

    def http_error_302(self, req, fp, code, msg, headers):  # type: ignore[no-untyped-def]
        fp.status = code
        fp.headers = headers
        return fp


def test_an_unreachable_redis_url_says_which_and_how_to_fix_it(tmp_path: Path) -> None:
    """REDIS_URL pointing nowhere: exit 1, naming the URL and the way out; nothing started."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = subprocess.run([sys.executable, "-m", "config.run"], cwd=ROOT, env=launcher_env(tmp_path, REDIS_URL=url),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"cannot reach Redis at REDIS_URL={url}" in result.stdout
    assert "unset REDIS_URL to use an embedded server" in result.stdout
    assert processes_with(f"QE_LAUNCHER_TEST={tmp_path}") == []


def test_no_suitable_python_is_reported(tmp_path: Path) -> None:
    """find_python.sh finds nothing newer than any Python there is; make_venv.sh then says what to install."""
    found = subprocess.run(["bash", "scripts/find_python.sh", "9.99"], cwd=ROOT, capture_output=True, text=True)
    assert found.returncode == 1 and found.stdout == ""
    venv = subprocess.run(["bash", "scripts/make_venv.sh", str(tmp_path / "venv"), ""], cwd=ROOT,
                          capture_output=True, text=True)
    assert venv.returncode == 2
    assert "no Python >= 3.11 found" in venv.stderr and "Install Python 3.11 or newer" in venv.stderr
    assert not (tmp_path / "venv").exists()
