"""System checks on QUEUEENGINE: each wrong value is named, with a hint; good settings are quiet."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from queueengine.checks import check_queueengine_settings

GOOD = {"URL": "redis://127.0.0.1:6379/0", "NAMESPACE": "default", "MODE": "reliable"}


def ids(settings: Any, config: Any) -> list[str]:
    settings.QUEUEENGINE = config
    return [m.id for m in check_queueengine_settings()]


def test_good_settings_pass(settings: Any) -> None:
    assert ids(settings, GOOD) == []
    assert ids(settings, {**GOOD, "URL": "rediss://h:6380/1", "QUEUES": ["high", "default"]}) == []
    dashboard = {"READ_ONLY": True, "METRICS_TOKEN": "x" * 16, "PAGE_SIZE": 50, "PREVIEW_BYTES": 0,
                 "NAMESPACES": ["default", "billing"], "REQUIRE_VIEW_PERMISSION": True, "ENVIRONMENT": "prod"}
    assert ids(settings, {**GOOD, **dashboard}) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"URL": "http://localhost"}, "queueengine.E002"),
        ({"URL": 6379}, "queueengine.E002"),
        ({"NAMESPACE": "a{b}"}, "queueengine.E003"),
        ({"NAMESPACE": ""}, "queueengine.E003"),
        ({"MODE": "fast"}, "queueengine.E004"),
        ({"QUEUES": []}, "queueengine.E005"),
        ({"QUEUES": "default"}, "queueengine.E005"),
        ({"CONCURRENCY": 0}, "queueengine.E006"),
        ({"PROCESSES": True}, "queueengine.E006"),
        ({"DASHBOARD": {"READ_ONLY": True}}, "queueengine.E007"),
        ({"REQUIRE_VIEW_PERMISSION": "no"}, "queueengine.E008"),
        ({"PAGE_SIZE": 0}, "queueengine.E011"),
        ({"PAGE_SIZE": 501}, "queueengine.E011"),
        ({"PREVIEW_BYTES": -1}, "queueengine.E012"),
        ({"NAMESPACES": "default"}, "queueengine.E013"),
        ({"NAMESPACES": ["ok", "not{ok}"]}, "queueengine.E013"),
        ({"ENVIRONMENT": 3}, "queueengine.E014"),
        ({"READ_ONLY": 1}, "queueengine.E008"),
        ({"SOCKET_TIMEOUT": 0}, "queueengine.E010"),
        ({"SOCKET_TIMEOUT": "5"}, "queueengine.E010"),
        ({"METRICS_TOKEN": "short"}, "queueengine.E009"),
        ({"NAMSPACE": "x"}, "queueengine.W001"),
    ],
)
def test_each_wrong_value_is_reported(settings: Any, change: dict[str, Any], expected: str) -> None:
    assert ids(settings, {**GOOD, **change}) == [expected]


def test_names_follow_the_one_naming_rule(settings: Any) -> None:
    """Namespaces, queues and tags the engine accepts pass the checks too (one rule, README Names);
    the jobasync mode, which keeps no namespace, is refused with a hint naming its front door."""
    legal = {**GOOD, "NAMESPACE": "shop eu", "NAMESPACES": ["shop eu", "café"], "QUEUES": ["emails/daily", "has space"]}
    assert ids(settings, legal) == []
    assert ids(settings, {**GOOD, "QUEUES": ["ok", " padded"]}) == ["queueengine.E005"]
    settings.QUEUEENGINE = {**GOOD, "MODE": "jobasync"}
    (message,) = check_queueengine_settings()
    assert message.id == "queueengine.E004" and 'mode="jobasync"' in (message.hint or "")


def test_typo_gets_a_suggestion(settings: Any) -> None:
    settings.QUEUEENGINE = {**GOOD, "NAMSPACE": "x"}
    (message,) = check_queueengine_settings()
    assert "NAMESPACE" in (message.hint or "")


def test_not_a_dict(settings: Any) -> None:
    assert ids(settings, "redis://x") == ["queueengine.E001"]


@pytest.mark.django_db  # the model checks of the installed apps read the database
def test_manage_check_fails_loudly(settings: Any) -> None:
    settings.QUEUEENGINE = {**GOOD, "MODE": "fast"}
    with pytest.raises(SystemCheckError, match="MODE"):
        call_command("check")


@pytest.mark.django_db  # the model checks of the installed apps read the database
def test_backend_options_are_reported_once(settings: Any) -> None:
    """A bad OPTIONS value of a QueueEngineBackend gives exactly one message, whichever of
    Django 6's task checks or (on 5.2 without the backport's app) ours runs it."""
    from django.core.checks import run_checks

    settings.TASKS = {"default": {"BACKEND": "queueengine.tasks.QueueEngineBackend",
                                  "OPTIONS": {"RETRIES": -2, "TAGS": ["ok"]}}}
    found = [m for m in run_checks() if m.id and m.id.startswith("queueengine.")]
    assert [m.id for m in found] == ["queueengine.E024"]
    assert "RETRIES" in found[0].msg and "-2" in found[0].msg


def test_good_backend_options_pass() -> None:
    """Good OPTIONS give no message; OPTIONS that are not a dict give one."""
    from queueengine.checks import check_backend_options

    good = {"URL": "redis://127.0.0.1:6379/1", "NAMESPACE": "shop", "TAGS": ["django"], "RETRIES": 0,
            "TRACK": True}
    assert check_backend_options("default", good) == []
    assert [m.id for m in check_backend_options("default", ["TAGS"])] == ["queueengine.E020"]


def test_no_queueengine_setting_names_the_default_url(settings: Any) -> None:
    del settings.QUEUEENGINE
    (message,) = check_queueengine_settings()
    assert message.id == "queueengine.I001" and "redis://127.0.0.1:6379/0" in message.msg


def test_task_backend_checks_run_once_with_or_without_the_framework_check(settings: Any) -> None:
    """Registered (queueengine's ready() imports django.tasks.checks, or the backport's): the
    framework runs the backend's check() and ours stays quiet; not registered: ours runs it."""
    from django.core.checks.registry import registry

    from queueengine import checks

    settings.TASKS = {"default": {"BACKEND": "queueengine.tasks.QueueEngineBackend", "OPTIONS": {"TRACK": "yes"}}}
    checks.register_framework_checks()
    framework = [c for c in registry.registered_checks
                 if (c.__module__, c.__name__) in checks.FRAMEWORK_CHECKS]
    assert len(framework) == 1
    assert checks.check_task_backends() == []
    assert [m.id for m in framework[0]()] == ["queueengine.E025"]
    registry.registered_checks.discard(framework[0])
    try:
        assert [m.id for m in checks.check_task_backends()] == ["queueengine.E025"]
    finally:
        registry.registered_checks.add(framework[0])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"INSTALLED_APPS": "-django_htmx"}, ["jobadmin.E001"]),
        ({"MIDDLEWARE": "-django_htmx.middleware.HtmxMiddleware"}, ["jobadmin.E002"]),
        ({"ASGI_APPLICATION": None}, ["jobadmin.W002"]),
        ({"CHANNEL_LAYERS": {}}, ["jobadmin.W003"]),
        ({"LOGIN_URL": "/accounts/login/"}, ["jobadmin.W004"]),
        ({"LOGIN_URL": "no-such-url-name"}, ["jobadmin.W004"]),
        ({"LOGIN_URL": "admin:login"}, []),
        ({"LOGIN_URL": "https://sso.example.com/login"}, []),
        ({"ASGI_APPLICATION": None, "CHANNEL_LAYERS": {}, "QUEUEENGINE": {"LIVE": False}}, []),
    ],
)
def test_dashboard_prerequisites_are_named(settings: Any, change: dict[str, Any], expected: list[str]) -> None:
    from jobadmin import checks

    for key, value in change.items():
        if isinstance(value, str) and value.startswith("-"):
            setattr(settings, key, [v for v in getattr(settings, key) if v != value[1:]])
        else:
            setattr(settings, key, value)
    found = checks.check_htmx() + checks.check_live() + checks.check_login_url()
    assert [m.id for m in found] == expected
    assert all(m.hint for m in found), "every message says how to fix it"


def test_missing_channels_package_is_named(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an importable channels, live updates (on by default) get jobadmin.W001."""
    import sys

    from jobadmin import checks

    class HideChannels:
        """Finds every module the real finders find, except channels."""

        def __init__(self, finders: list[Any]) -> None:
            self.finders = finders

        def find_spec(self, name: str, *args: Any) -> Any:
            if name == "channels":
                return None
            for finder in self.finders:
                spec = finder.find_spec(name, *args) if hasattr(finder, "find_spec") else None
                if spec is not None:
                    return spec
            return None

    monkeypatch.delitem(sys.modules, "channels", raising=False)
    monkeypatch.setattr(sys, "meta_path", [HideChannels(list(sys.meta_path))])
    found = checks.check_live()
    assert [m.id for m in found] == ["jobadmin.W001"] and "queueengine[dashboard]" in (found[0].hint or "")
