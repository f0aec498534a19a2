"""`pip install` of the built wheel gives a working engine and dashboard in a separate project."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SETTINGS = """
SECRET_KEY = "packaging-test"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
    "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
    "django_htmx", "channels", "queueengine", "jobadmin", "shop",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]
ROOT_URLCONF = "site_urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
              "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                                 "django.contrib.auth.context_processors.auth",
                                                 "django.contrib.messages.context_processors.messages"]}}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
STATIC_URL = "static/"
USE_TZ = True
QUEUEENGINE = {"URL": "%(url)s", "NAMESPACE": "packaged"}
TASKS = {"default": {"BACKEND": "queueengine.tasks.QueueEngineBackend"}}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
"""

URLS = """
from django.contrib import admin
from django.urls import include, path
urlpatterns = [path("admin/", admin.site.urls), path("jobs/", include("jobadmin.urls"))]
"""

TASKS = """
try:
    from django.tasks import task
except ImportError:
    from django_tasks import task

@task()
def multiply(x, y):
    return x * y
"""

SCRIPT = """
import os, subprocess, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "site_settings"
import django
django.setup()
from django.core.management import call_command
from django.test import Client
from shop.tasks import multiply
result = multiply.enqueue(6, 7)
subprocess.run([sys.executable, "manage.py", "qe_worker", "--burst", "-q", "default"], check=True)
done = multiply.get_result(result.id)
print("STATUS", done.status, "VALUE", done.return_value)
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
user = get_user_model().objects.create_user("ops", password="pw", is_staff=True)
client = Client()
client.force_login(user)
page = client.get("/jobs/")
print("DASHBOARD", page.status_code)
"""

MANAGE = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_project(tmp_path: Path, redis_url: str, redis_conn: object) -> None:
    """Build the wheel, install it in a new venv, run a task through a worker, load the dashboard."""
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        check=True, cwd=tmp_path,
    )
    wheel = next(dist.glob("queueengine-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{wheel}[django]"],
        check=True,
    )
    project = tmp_path / "project"
    (project / "shop").mkdir(parents=True)
    (project / "site_settings.py").write_text(SETTINGS % {"url": redis_url})
    (project / "site_urls.py").write_text(URLS)
    (project / "shop" / "__init__.py").write_text("")
    (project / "shop" / "tasks.py").write_text(textwrap.dedent(TASKS))
    (project / "manage.py").write_text(MANAGE)
    (project / "check.py").write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    out = subprocess.run(
        [str(python), "check.py"], cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "STATUS SUCCESSFUL VALUE 42" in out.stdout
    assert "DASHBOARD 200" in out.stdout
    installed = subprocess.run(
        [str(python), "-c", "import queueengine, pathlib; print(pathlib.Path(queueengine.__file__).parent)"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    ).stdout.strip()
    assert installed.startswith(str(venv)), "the test must use the installed copy, not the checkout"
    assert list(Path(installed, "lua").glob("*.lua")), "the Lua files ship in the wheel"
