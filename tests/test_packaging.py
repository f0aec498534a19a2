"""`pip install` of the built wheel (and of the source tree) gives a working engine and dashboard
in a separate Django project written here: settings, urls with one include(), an ASGI route."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SETTINGS = """
SECRET_KEY = "packaging-test"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost"]
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
ASGI_APPLICATION = "site_asgi.application"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
              "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                                 "django.contrib.auth.context_processors.auth",
                                                 "django.contrib.messages.context_processors.messages"]}}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
STATIC_URL = "static/"
USE_TZ = True
LOGIN_URL = "/admin/login/"
QUEUEENGINE = {"URL": "%(url)s", "NAMESPACE": "packaged"}
TASKS = {"default": {"BACKEND": "queueengine.tasks.QueueEngineBackend"}}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
"""

URLS = """
from django.contrib import admin
from django.urls import include, path
urlpatterns = [path("admin/", admin.site.urls), path("jobs/", include("jobadmin.urls"))]
"""

ASGI = """
import os
from django.core.asgi import get_asgi_application
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_settings")
http = get_asgi_application()
from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from jobadmin.routing import websocket_urlpatterns
application = ProtocolTypeRouter({"http": http, "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns))})
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
import asyncio, os, subprocess, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "site_settings"
import django
django.setup()
from django.core.management import call_command
from django.test import Client
from shop.tasks import multiply
x = int(sys.argv[1])
result = multiply.enqueue(x, 7)
subprocess.run([sys.executable, "manage.py", "qe_worker", "--burst", "-q", "default"], check=True)
done = multiply.get_result(result.id)
print("STATUS", done.status, "VALUE", done.return_value)
call_command("check")
call_command("migrate", verbosity=0)
anonymous = Client().get("/jobs/")
print("ANONYMOUS", anonymous.status_code, anonymous.headers.get("Location", ""))
from django.contrib.auth import get_user_model
user = get_user_model().objects.filter(username="ops").first() or get_user_model().objects.create_user(
    "ops", password="pw", is_staff=True, is_superuser=True)
client = Client()
client.force_login(user)
page = client.get("/jobs/")
print("DASHBOARD", page.status_code)

from asgiref.testing import ApplicationCommunicator
from site_asgi import application

async def over_asgi():
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": "/jobs/", "raw_path": b"/jobs/", "query_string": b"",
             "headers": [(b"host", b"localhost")], "client": ("127.0.0.1", 1), "server": ("localhost", 80)}
    app = ApplicationCommunicator(application, scope)
    await app.send_input({"type": "http.request", "body": b""})
    start = await app.receive_output(10)
    return start["status"]
print("ASGI", asyncio.run(over_asgi()))
"""

MANAGE = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""

IGNORE = shutil.ignore_patterns(".git", ".venv*", ".data", "build", "dist", "*.egg-info", "__pycache__",
                                ".hypothesis", ".mypy_cache", ".ruff_cache", ".pytest_cache", "node_modules")


def _write_project(project: Path, redis_url: str) -> None:
    (project / "shop").mkdir(parents=True)
    (project / "site_settings.py").write_text(SETTINGS % {"url": redis_url})
    (project / "site_urls.py").write_text(URLS)
    (project / "site_asgi.py").write_text(ASGI)
    (project / "shop" / "__init__.py").write_text("")
    (project / "shop" / "tasks.py").write_text(textwrap.dedent(TASKS))
    (project / "manage.py").write_text(MANAGE)
    (project / "check.py").write_text(SCRIPT)


def _run_project(python: Path, project: Path, x: int) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    out = subprocess.run([str(python), "check.py", str(x)], cwd=project, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def _installed_files(python: Path, cwd: Path) -> tuple[Path, list[str]]:
    code = ("import pathlib, queueengine, jobadmin; "
            "roots = [pathlib.Path(m.__file__).parent for m in (queueengine, jobadmin)]; "
            "print(roots[0].parent); "
            "[print(p.relative_to(r.parent).as_posix()) for r in roots for p in r.rglob('*') if p.is_file()]")
    lines = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True,
                           cwd=cwd).stdout.split()
    return Path(lines[0]), lines[1:]


def _assert_ships_everything(names: list[str], where: str) -> None:
    """Both apps with their Lua, templates, static files, migrations and management commands."""
    def has(prefix: str, suffix: str = "") -> bool:
        return any(n.startswith(prefix) and n.endswith(suffix) for n in names)

    for lua in ("base", "job", "queue", "api"):
        assert f"queueengine/store/lua/{lua}.lua" in names, f"{where}: queueengine/store/lua/{lua}.lua missing"
    assert "queueengine/py.typed" in names, f"{where}: py.typed missing"
    assert has("queueengine/management/commands/qe_worker", ".py"), f"{where}: qe_worker missing"
    assert has("jobadmin/templates/jobadmin/", ".html"), f"{where}: the dashboard templates are missing"
    assert "jobadmin/templates/jobadmin/overview.html" in names, f"{where}: overview.html missing"
    assert has("jobadmin/static/jobadmin/"), f"{where}: the dashboard's static files are missing"
    assert has("jobadmin/migrations/", ".py"), f"{where}: jobadmin migrations missing"
    assert not has("tests/") and not has("config/"), f"{where}: the demo project or tests leaked in"


@pytest.mark.slow
@pytest.mark.timeout(900)  # it downloads the dependencies into a new venv
def test_wheel_installs_into_a_fresh_project(tmp_path: Path, redis_url: str, redis_conn: object) -> None:
    """Build the wheel, install it in a new venv, run a task through a worker, load the dashboard
    (anonymous: redirected to log in; staff: the page), over WSGI-style and ASGI; then
    `pip install` the source tree into the same venv and run it again."""
    source = tmp_path / "src"  # a clean copy: no stale build/ of the checkout ends up in the wheel
    shutil.copytree(ROOT, source, ignore=IGNORE)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--disable-pip-version-check",
                    "-w", str(dist), str(source)], check=True, cwd=tmp_path)
    wheel = next(dist.glob("queueengine-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        _assert_ships_everything(archive.namelist(), "the wheel")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{wheel}[dashboard]"],
                   check=True)
    project = tmp_path / "project"
    _write_project(project, redis_url)
    out = _run_project(python, project, 6)
    assert "STATUS SUCCESSFUL VALUE 42" in out
    assert "ANONYMOUS 302 /admin/login/?next=/jobs/" in out
    assert "DASHBOARD 200" in out
    assert "ASGI 302" in out
    site, names = _installed_files(python, tmp_path)
    assert str(site).startswith(str(venv)), "the test must use the installed copy, not the checkout"
    _assert_ships_everything(names, "the installed wheel")

    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                    "--force-reinstall", str(source)], check=True, cwd=tmp_path)
    site, names = _installed_files(python, tmp_path)
    assert str(site).startswith(str(venv))
    _assert_ships_everything(names, "pip install of the source tree")
    assert "STATUS SUCCESSFUL VALUE 56" in _run_project(python, project, 8)


SDIST_TOP = {"LICENSE", "README.md", "PKG-INFO", "pyproject.toml", "setup.cfg", "queueengine", "jobadmin",
             "queueengine.egg-info"}


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sdist and the wheel, built with `python -m build` from a clean copy of the checkout."""
    tmp = tmp_path_factory.mktemp("dists")
    source = tmp / "src"
    shutil.copytree(ROOT, source, ignore=IGNORE)
    subprocess.run([sys.executable, "-m", "build", "-q", "-o", str(tmp / "dist"), str(source)], check=True,
                   cwd=tmp, capture_output=True, timeout=600)
    return next((tmp / "dist").glob("*.tar.gz")), next((tmp / "dist").glob("*.whl"))


@pytest.mark.timeout(600)  # the first user of `dists` builds them
def test_sdist_holds_the_packages_and_metadata_only(dists: tuple[Path, Path]) -> None:
    """No tests, demo project, benchmarks, scripts, docs or bytecode in the sdist; the LICENSE is."""
    with tarfile.open(dists[0]) as archive:
        names = [m.name.split("/", 1)[1] for m in archive.getmembers() if "/" in m.name and m.isfile()]
    assert {n.split("/", 1)[0] for n in names} == SDIST_TOP, sorted({n.split("/", 1)[0] for n in names})
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    _assert_ships_everything(names, "the sdist")


@pytest.mark.timeout(600)
def test_wheel_metadata_extras_license_and_classifiers(dists: tuple[Path, Path]) -> None:
    """The engine alone by default; Django 5.2 to 6.1 with the backport in [django]; the dashboard
    and daphne in their own extras; the MIT LICENSE file; supported Pythons as classifiers."""
    with zipfile.ZipFile(dists[1]) as archive:
        names = archive.namelist()
        meta = Parser().parsestr(archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode())
    assert {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")} == {
        "queueengine", "jobadmin"}
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert meta["License-Expression"] == "MIT"
    classifiers = meta.get_all("Classifier") or []
    for wanted in ("Framework :: Django :: 5.2", "Programming Language :: Python :: 3.11",
                   "Programming Language :: Python :: 3.12", "Programming Language :: Python :: 3.13"):
        assert wanted in classifiers
    assert set(meta.get_all("Provides-Extra") or []) == {"django", "dashboard", "daphne", "embedded", "otel"}
    by_extra: dict[str, set[str]] = {}
    for line in meta.get_all("Requires-Dist") or []:
        spec, _, marker = line.partition(";")
        extra = marker.split("extra ==")[1].strip().strip("\"'") if "extra ==" in marker else ""
        assert "python_version" not in marker, f"{line}: no requirement depends on the Python version"
        by_extra.setdefault(extra, set()).add(spec.strip().replace(" ", ""))
    assert {r.split(">")[0].split("<")[0] for r in by_extra[""]} == {"redis", "hiredis", "orjson", "croniter"}
    assert by_extra["django"] == {"Django<6.2,>=5.2", "django-tasks>=0.12"}
    assert {r.split(">")[0].split("[")[0] for r in by_extra["dashboard"]} == {
        "queueengine", "django-htmx", "channels", "channels-redis"}
    assert {r.split(">")[0] for r in by_extra["daphne"]} == {"daphne"}
    assert {r.split(">")[0] for r in by_extra["otel"]} == {"opentelemetry-api"}, "the otel extra: the API only"


def test_runtime_and_development_requirements_are_apart() -> None:
    """requirements.txt (what `make run` installs) has no test or lint tools; the dev file adds them."""
    runtime = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    runtime = [line for line in runtime if line]
    for tool in ("pytest", "hypothesis", "playwright", "ruff", "mypy", "build"):
        assert not [r for r in runtime if r.lower().startswith(tool)], f"{tool} is in requirements.txt"
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert "-r requirements.txt" in dev and "pytest" in dev and "ruff" in dev
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^venv:\n\t.*make_venv\.sh .* requirements\.txt$", makefile, re.M)
    assert re.search(r"^run: venv$", makefile, re.M)
