"""qe_worker's default queues and logging (queueengine.management.common), and the shared client of views."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import pytest

from queueengine.conf import shared_client
from queueengine.management.common import configure_logging, default_queues

BACKEND = "queueengine.tasks.QueueEngineBackend"


@pytest.mark.parametrize(
    ("queueengine", "tasks", "expected"),
    [
        ({}, {"default": {"BACKEND": BACKEND, "QUEUES": ["default", "emails"]}}, ["default", "emails"]),
        ({"QUEUES": ["high"]}, {"default": {"BACKEND": BACKEND, "QUEUES": ["default", "emails"]}}, ["high"]),
        ({}, {"default": {"BACKEND": BACKEND, "QUEUES": ["emails"]},
              "bulk": {"BACKEND": BACKEND, "QUEUES": ["bulk", "emails"]}}, ["emails", "bulk"]),
        ({}, {"default": {"BACKEND": BACKEND}}, ["default"]),
        ({}, {"default": {"BACKEND": BACKEND, "QUEUES": []}}, ["default"]),
        ({}, {"default": {"BACKEND": BACKEND, "QUEUES": ["x"], "OPTIONS": {"NAMESPACE": "other"}}}, ["default"]),
        ({}, {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend", "QUEUES": ["x"]}},
         ["default"]),
    ],
)
def test_worker_default_queues(settings: Any, queueengine: dict[str, Any], tasks: dict[str, Any],
                               expected: list[str]) -> None:
    settings.QUEUEENGINE = {"URL": settings.QUEUEENGINE["URL"], **queueengine}
    settings.TASKS = tasks
    assert default_queues() == expected


def test_in_process_commands_leave_logging_alone() -> None:
    """call_command(...) runs without _called_from_command_line: nothing changes."""
    root, engine = logging.getLogger(), logging.getLogger("queueengine")
    before = (list(root.handlers), root.level, engine.level)

    class InProcess:
        pass

    configure_logging(InProcess(), 0)
    assert (list(root.handlers), root.level, engine.level) == before


SCRIPT = """
import logging, sys
import django
from django.conf import settings
settings.configure(DEBUG=True, INSTALLED_APPS=[])   # Django's default LOGGING: a 'django' console handler
django.setup()
from queueengine.management.common import configure_logging

class FromCommandLine:
    _called_from_command_line = True

configure_logging(FromCommandLine(), int(sys.argv[1]))
logging.getLogger("django.tasks").info("task-line-info")
logging.getLogger("queueengine.worker").info("engine-line-info")
logging.getLogger("queueengine.worker").warning("engine-line-warning")
logging.getLogger("django.tasks").debug("task-line-debug")
"""


@pytest.mark.parametrize(("verbosity", "shown"), [
    (0, ["engine-line-warning"]),
    (1, ["task-line-info", "engine-line-info", "engine-line-warning"]),
    (2, ["task-line-info", "engine-line-info", "engine-line-warning", "task-line-debug"]),
])
def test_command_line_logging_shows_each_line_once(verbosity: int, shown: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(verbosity)], capture_output=True, text=True,
                          timeout=60, check=True)
    out = done.stdout + done.stderr
    for name in ("task-line-info", "engine-line-info", "engine-line-warning", "task-line-debug"):
        assert out.count(name) == (1 if name in shown else 0), f"{name} at -v {verbosity}:\n{out}"


def test_shared_client_is_one_per_process_and_settings(settings: Any) -> None:
    first = shared_client()
    assert shared_client() is first
    assert first.namespace == settings.QUEUEENGINE.get("NAMESPACE", "default")
    other = shared_client("billing")
    assert other is not first and other.namespace == "billing"
    settings.QUEUEENGINE = {**settings.QUEUEENGINE, "NAMESPACE": "elsewhere"}
    assert shared_client() is not first and shared_client().namespace == "elsewhere"
    assert shared_client().queues["q"].counts["waiting"] == 0  # it talks to the configured server


def _with_redis(tmp_path: Any, env: dict[str, str]) -> tuple[str, str]:
    import os
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    venv = str(Path(sys.executable).parent.parent)
    base = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    done = subprocess.run(["bash", str(root / "scripts" / "with_redis.sh"), "python", "-c",
                           "import os; print(os.environ.get('REDIS_URL', 'unset'))"],
                          env={**base, "VENV": venv, "QE_DATA_DIR": str(tmp_path), **env},
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip(), done.stderr


def test_second_terminal_finds_the_embedded_server_of_make_run(tmp_path: Any, redis_url: str) -> None:
    """make shell / make manage (scripts/with_redis.sh): REDIS_URL kept when set; else the
    server whose port `make run` wrote to .data/redis/port, when it answers; else the default."""
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    url, said = _with_redis(tmp_path, {})
    assert url == "unset" and "redis://127.0.0.1:6379/0" in said
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "port").write_text(port)
    url, said = _with_redis(tmp_path, {})
    assert url == f"redis://127.0.0.1:{port}/0" and "embedded Redis of make run" in said
    url, said = _with_redis(tmp_path, {"REDIS_URL": "redis://elsewhere:6379/1"})
    assert url == "redis://elsewhere:6379/1" and "REDIS_URL=redis://elsewhere:6379/1" in said


@pytest.mark.parametrize(("env", "expected"), [
    ({}, {}),
    ({"QE_READ_ONLY": "1", "QE_METRICS_TOKEN": "t" * 20, "QE_REQUIRE_VIEW_PERMISSION": "1"},
     {"READ_ONLY": True, "METRICS_TOKEN": "t" * 20, "REQUIRE_VIEW_PERMISSION": True}),
    ({"QE_READ_ONLY": "0", "QE_REQUIRE_VIEW_PERMISSION": "0"}, {"READ_ONLY": False, "REQUIRE_VIEW_PERMISSION": False}),
])
def test_demo_settings_dashboard_switches(env: dict[str, str], expected: dict[str, Any], tmp_path: Any) -> None:
    """config/settings.py reads QE_READ_ONLY, QE_METRICS_TOKEN and QE_REQUIRE_VIEW_PERMISSION."""
    import json
    import os
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    keys = ("READ_ONLY", "METRICS_TOKEN", "REQUIRE_VIEW_PERMISSION")
    base = {k: v for k, v in os.environ.items() if not k.startswith("QE_") and k != "DJANGO_SETTINGS_MODULE"}
    code = ("import json, config.settings as s; "
            f"print(json.dumps({{k: s.QUEUEENGINE[k] for k in {keys!r} if k in s.QUEUEENGINE}}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60,
                          check=True, env={**base, "QE_DATA_DIR": str(tmp_path), **env})
    assert json.loads(done.stdout) == expected


def test_demo_favicon_is_no_404(client: Any) -> None:
    """/favicon.ico (asked by browsers on pages that link none, like the admin's) goes to the icon."""
    from django.contrib.staticfiles import finders

    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/jobadmin/favicon.svg"
    assert finders.find("jobadmin/favicon.svg")
