"""QUEUEENGINE settings: lazy defaults, override_settings, and apps that do no Redis I/O at start."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import redis
from django.test import override_settings

from queueengine.conf import Settings, get_client, settings
from queueengine.devtools.embedded import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent

DEFAULTS = {
    "URL": "redis://127.0.0.1:6379/0",
    "NAMESPACE": "default",
    "MODE": "reliable",
    "QUEUES": ("default",),
    "CONCURRENCY": 4,
    "PROCESSES": 1,
    "SOCKET_TIMEOUT": None,
    "READ_ONLY": False,
    "METRICS_TOKEN": None,
    "QUEUE_NAMESPACES": {},
    "NAMESPACES": None,
}


def test_missing_keys_take_the_defaults() -> None:
    """With an empty QUEUEENGINE every key has its documented default."""
    with override_settings(QUEUEENGINE={}):
        assert settings.as_dict() == DEFAULTS


def test_values_are_read_on_every_access() -> None:
    """override_settings takes effect at once and is undone on exit (nothing is cached)."""
    with override_settings(QUEUEENGINE={"NAMESPACE": "shop", "QUEUES": ["high", "low"], "READ_ONLY": True,
                                        "METRICS_TOKEN": "t" * 20, "CONCURRENCY": 16}):
        assert (settings.NAMESPACE, settings.QUEUES, settings.READ_ONLY) == ("shop", ("high", "low"), True)
        assert (settings.METRICS_TOKEN, settings.CONCURRENCY) == ("t" * 20, 16)
        with override_settings(QUEUEENGINE={"NAMESPACE": "inner"}):
            assert settings.NAMESPACE == "inner" and settings.QUEUES == ("default",)
        assert settings.NAMESPACE == "shop"
    assert settings.NAMESPACE == "test"  # tests/settings.py


def test_the_dashboard_reads_the_same_flags() -> None:
    """READ_ONLY and METRICS_TOKEN mean the same to the engine's settings and to the dashboard's."""
    from jobadmin import conf as dashboard

    with override_settings(QUEUEENGINE={"READ_ONLY": True, "METRICS_TOKEN": "m" * 16}):
        assert settings.READ_ONLY is dashboard.read_only() is True
        assert settings.METRICS_TOKEN == dashboard.get("METRICS_TOKEN") == "m" * 16
    with override_settings(QUEUEENGINE={}):
        assert settings.READ_ONLY is dashboard.read_only() is False


def test_get_client_uses_the_settings(redis_url: str, redis_conn: redis.Redis) -> None:
    """get_client() connects to QUEUEENGINE's URL and namespace, with its socket timeout."""
    with override_settings(QUEUEENGINE={"URL": redis_url, "NAMESPACE": "configured", "SOCKET_TIMEOUT": 7.5}):
        client = get_client()
    try:
        assert client.namespace == "configured"
        assert client.redis.connection_pool.connection_kwargs["socket_timeout"] == 7.5
        client.queues["q"].put("tests.jobfixtures.add", {"x": 1})
        assert redis_conn.keys("qe:{configured}:*")
    finally:
        client.close()


def test_defaults_without_django_settings() -> None:
    """In a process where Django is not configured, the defaults apply and nothing fails."""
    code = "from queueengine.conf import settings; print(sorted(settings.as_dict().items()))"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(sorted(DEFAULTS.items()))
    assert tuple(DEFAULTS) == Settings._KEYS


STARTUP = """
import django
django.setup()
from django.core.management import call_command
import jobadmin.urls, jobadmin.views, jobadmin.routing, queueengine.tasks, config.urls, config.asgi
from queueengine.djtasks_compat import task_backends
backend = task_backends["default"]
from tests import djtasks_fixtures
call_command("check")
print("started")
"""


def test_apps_do_no_redis_io_at_startup(tmp_path: Path) -> None:
    """django.setup(), importing both apps, urls, asgi, the task backend and `check` open no
    connection to the configured Redis (a private server counts its connections)."""
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    try:
        (tmp_path / "startup_settings.py").write_text(textwrap.dedent(f"""
            from tests.settings import *  # noqa
            QUEUEENGINE = {{**QUEUEENGINE, "URL": {url!r}}}
            TASKS = {{"default": {{**TASKS["default"], "OPTIONS": {{"URL": {url!r}}}}}}}
        """))
        conn = redis.Redis.from_url(url)
        before = conn.info("stats")["total_connections_received"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
               "DJANGO_SETTINGS_MODULE": "startup_settings", "CHANNEL_LAYER": "memory"}
        out = subprocess.run([sys.executable, "-c", STARTUP], env=env, cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-3000:]
        assert out.stdout.strip().endswith("started")
        assert conn.info("stats")["total_connections_received"] == before
        assert conn.dbsize() == 0
        conn.close()
    finally:
        server.stop()


def test_every_key_is_known_to_the_checks(settings: object) -> None:
    """Each key the code reads is accepted by the system checks, and its default passes them."""
    from queueengine.checks import KNOWN_KEYS, check_queueengine_settings

    assert set(DEFAULTS) <= set(KNOWN_KEYS)
    defaults = {k: list(v) if isinstance(v, tuple) else v for k, v in DEFAULTS.items()}
    with override_settings(QUEUEENGINE=defaults):
        assert check_queueengine_settings() == []


def test_namespaces_come_from_the_settings(redis_url: str, redis_conn: redis.Redis) -> None:
    """``queueengine.conf.namespaces()`` routes queues as QUEUE_NAMESPACES says, lists NAMESPACES,
    and closes the connection it made."""
    from queueengine.conf import namespaces

    config = {"URL": redis_url, "NAMESPACE": "main", "QUEUE_NAMESPACES": {"emails": "mail"},
              "NAMESPACES": ["main", "mail", "media"]}
    with override_settings(QUEUEENGINE=config):
        spaces = namespaces()
    try:
        assert spaces.namespace_of("emails") == "mail" and spaces.namespace_of("other") == "main"
        jid = spaces.queue("emails").put("app.K", {})
        assert spaces.client("mail").jobs[jid].queue_name == "emails"
        assert redis_conn.exists(f"qe:{{mail}}:j:{jid}")
        assert {"main", "mail", "media"} <= set(spaces.names())
        assert spaces.owns_connection
    finally:
        spaces.close()
