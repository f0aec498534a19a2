"""The django.tasks backend refuses every argument it cannot store faithfully with the class
Django's own validation raises for an unsupported type (TypeError), as UnsupportedData (also an
InvalidArgument) naming the argument; nothing is written."""

from __future__ import annotations

import math
from typing import Any

import pytest
from django.core.management import call_command

from queueengine import InvalidArgument, UnsupportedData
from queueengine.djtasks_compat import TaskResultStatus
from tests import djtasks_fixtures as fx

try:
    from django.tasks import task
    from django.tasks.backends.dummy import DummyBackend
except ImportError:  # Django 5.2 + backport
    from django_tasks import task  # type: ignore[no-redef]
    from django_tasks.backends.dummy import DummyBackend  # type: ignore[no-redef]


@task()
def ratio(x: float, y: float) -> float:
    """x / y, or NaN when both are 0 (a return value JSON cannot carry)."""
    return math.nan if x == y == 0 else x / y


@pytest.fixture
def backend(redis_conn: Any) -> Any:
    """The default task backend, on a flushed Redis."""
    backend = fx.add.get_backend()
    backend.close()
    yield backend
    backend.close()


def _django_error(*args: Any, **kwargs: Any) -> type[BaseException]:
    """The class Django's own DummyBackend raises for these arguments."""
    dummy = DummyBackend("dummy", {"QUEUES": [], "OPTIONS": {}})
    with pytest.raises(Exception) as info:
        dummy.enqueue(fx.add, args, kwargs)
    return type(info.value)


BAD: list[tuple[tuple[Any, ...], dict[str, Any], str]] = [
    ((object(), 1), {}, "args[0]"),
    ((1, {1, 2}), {}, "args[1]"),
    ((1,), {"y": [1, object()]}, "kwargs.y[1]"),
    ((b"\xff", 1), {}, "args[0]"),
    ((math.nan, 1), {}, "args[0]"),
    ((1,), {"y": math.inf}, "kwargs.y"),
    ((2**64, 1), {}, "args[0]"),
    (({1: "a"}, 1), {}, "args[0]"),
    (({(1, 2): "a"}, 1), {}, "args[0]"),
]


@pytest.mark.parametrize(("args", "kwargs", "path"), BAD, ids=[p for *_, p in BAD])
def test_unstorable_arguments_are_refused(backend: Any, redis_conn: Any, args: tuple[Any, ...],
                                          kwargs: dict[str, Any], path: str) -> None:
    with pytest.raises(UnsupportedData) as info:
        fx.add.enqueue(*args, **kwargs)
    err = info.value
    assert isinstance(err, TypeError) and isinstance(err, InvalidArgument)
    assert str(err).startswith(path + " ")
    assert redis_conn.dbsize() == 0


@pytest.mark.parametrize(("args", "kwargs"), [((object(), 1), {}), ((1, {1, 2}), {})])
def test_the_class_is_the_one_django_raises(backend: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Code written against Django's backends (``except TypeError``) keeps working."""
    expected = _django_error(*args, **kwargs)
    assert issubclass(UnsupportedData, expected)


def test_what_django_normalises_is_stored_as_django_would(backend: Any) -> None:
    result = fx.add.enqueue(b"utf-8 bytes", (1, 2))
    assert result.args == ["utf-8 bytes", [1, 2]]
    assert backend.client.jobs[result.id].data["args"] == ["utf-8 bytes", [1, 2]]


def test_a_return_value_json_cannot_carry_fails_the_task(backend: Any) -> None:
    good = ratio.enqueue(1, 4)
    bad = ratio.enqueue(0, 0)
    call_command("qe_worker", "--burst", "-q", "default")
    assert ratio.get_result(good.id).return_value == 0.25
    failed = ratio.get_result(bad.id)
    assert failed.status == TaskResultStatus.FAILED
    assert failed.errors and "UnsupportedData" in failed.errors[0].exception_class_path
    assert "return value" in failed.errors[0].traceback
