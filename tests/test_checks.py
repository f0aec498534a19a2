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
        ({"DASHBOARD": {"READ_ONLY": "yes"}}, "queueengine.E008"),
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


def test_manage_check_fails_loudly(settings: Any) -> None:
    settings.QUEUEENGINE = {**GOOD, "MODE": "fast"}
    with pytest.raises(SystemCheckError, match="MODE"):
        call_command("check")
