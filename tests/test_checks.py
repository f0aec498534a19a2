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
        ({"NAMESPACES": ["ok", "not ok"]}, "queueengine.E013"),
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
