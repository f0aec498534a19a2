"""Job handlers: find the code for a job's ``klass``, run it, and turn the outcome into a verdict.

A job's ``klass`` is a dotted path to either

* a plain function taking the job (``def resize(job): ...`` or ``async def resize(job): ...``), or
* a class with a method named after the job's queue or, failing that, ``process`` (qless-py
  style). The method may be a ``staticmethod``/``classmethod`` taking the job, or an ordinary
  method: the class is then instantiated with no arguments for each job.

Returning normally completes the job with the return value as its result (auto-complete),
unless the handler already completed, failed, retried, moved or canceled it. An exception
fails the job in group ``<queue>-<ExceptionClass>`` with the traceback, or retries it with a
backoff delay when the handler declares it retryable::

    from queueengine.worker.handlers import exponential, retry

    @retry(on=(TimeoutError, ConnectionError), backoff=exponential(base=1, factor=2, max=300))
    def fetch(job): ...

    class Fetch:
        retry_on = (TimeoutError,)
        backoff = exponential(base=2)
        def process(self, job): ...

A retried job keeps the real error as its failure (group and message), and when its retries run
out it fails with that error rather than a generic "exhausted retries" message.
"""

from __future__ import annotations

import importlib
import inspect
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from queueengine.job import Job

Backoff = Callable[[int], float]
"""A backoff maps the attempt number (1 for the first retry) to a delay in seconds."""

F = TypeVar("F", bound=Callable[..., Any])

MAX_MESSAGE = 20_000


class JobAborted(Exception):  # noqa: N818 - reads better at the call site than JobAbortedError
    """Raised inside a handler (by ``checkpoint``) when its job's lease was lost or it was canceled."""


def exponential(base: float = 1.0, factor: float = 2.0, max: float = 300.0, jitter: float = 0.0) -> Backoff:  # noqa: A002
    """Delay ``base * factor ** (attempt - 1)`` capped at ``max``; ``jitter`` adds up to that fraction at random."""
    cap = float(max)
    if base < 0 or factor < 1 or cap < 0 or not 0 <= jitter <= 1:
        raise ValueError("exponential backoff needs base >= 0, factor >= 1, max >= 0 and 0 <= jitter <= 1")

    def delay(attempt: int) -> float:
        exponent = min(attempt - 1 if attempt > 1 else 0, 1000)
        try:
            value = min(cap, base * factor ** exponent)
        except OverflowError:
            value = cap
        if jitter:
            value += value * jitter * random.random()
        return value

    return delay


def max_(a: int, b: int) -> int:
    return a if a > b else b


def constant(seconds: float) -> Backoff:
    """The same delay for every retry."""
    if seconds < 0:
        raise ValueError("constant backoff needs seconds >= 0")
    return lambda attempt: float(seconds)


def linear(step: float, max: float = 300.0) -> Backoff:  # noqa: A002
    """Delay ``step * attempt`` capped at ``max``."""
    if step < 0 or max < 0:
        raise ValueError("linear backoff needs step >= 0 and max >= 0")
    return lambda attempt: min(float(max), step * attempt)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Which exceptions retry a job instead of failing it, and how long to wait before each retry."""

    on: tuple[type[BaseException], ...]
    backoff: Backoff

    def delay(self, job: Job) -> float:
        """Delay before the next attempt of ``job``, from how many retries it already used."""
        original = _int(getattr(job, "original_retries", 0))
        left = _int(getattr(job, "retries_left", 0))
        attempt = max_(original - left + 1, 1)
        return max(0.0, float(self.backoff(attempt)))


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def retry(on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
          backoff: Backoff | float = 0.0) -> Callable[[F], F]:
    """Mark a handler function (or class) so that ``on`` exceptions retry the job after ``backoff``.

    ``backoff`` is a number of seconds or a function of the attempt number (see
    ``exponential``, ``linear``, ``constant``). The handler itself is returned unchanged.
    """
    exceptions = on if isinstance(on, tuple) else (on,)
    if not exceptions or not all(isinstance(e, type) and issubclass(e, BaseException) for e in exceptions):
        raise TypeError("retry(on=...) takes an exception class or a tuple of them")
    policy = RetryPolicy(exceptions, backoff if callable(backoff) else constant(float(backoff)))

    def mark(handler: F) -> F:
        handler.__qe_retry__ = policy  # type: ignore[attr-defined]
        return handler

    return mark


@dataclass(slots=True)
class Handler:
    """A resolved handler: what to call with the job, whether it is a coroutine function, its retry policy."""

    call: Callable[[Job], Any] | None
    is_async: bool
    policy: RetryPolicy | None
    error_group: str | None = None
    error_message: str | None = None


def _policy_of(obj: Any) -> RetryPolicy | None:
    marked = getattr(obj, "__qe_retry__", None)
    if isinstance(marked, RetryPolicy):
        return marked
    on = getattr(obj, "retry_on", None)
    if on:
        exceptions = on if isinstance(on, tuple) else tuple(on) if isinstance(on, list) else (on,)
        backoff = getattr(obj, "backoff", 0.0)
        return RetryPolicy(exceptions, backoff if callable(backoff) else constant(float(backoff or 0.0)))
    return None


def import_path(path: str) -> Any:
    """Import ``package.module.Name`` (also ``package.module.Outer.Inner``)."""
    if not isinstance(path, str) or "." not in path:
        raise ImportError(f"{path!r} is not a dotted path like 'app.jobs.resize'")
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
                continue  # that prefix is not a module; try a shorter one
            raise
        for attr in parts[cut:]:
            try:
                obj = getattr(obj, attr)
            except AttributeError:
                raise ImportError(f"module {module_name!r} has no attribute {'.'.join(parts[cut:])!r}") from None
        return obj
    raise ImportError(f"no module found for {path!r}")


def resolve(klass: str, queue: str) -> Handler:
    """Find the handler for ``klass`` in ``queue``; errors come back as a Handler with ``error_group`` set."""
    try:
        target = import_path(klass)
    except Exception as exc:
        return Handler(None, False, None, f"{queue}-ImportError", f"cannot import {klass!r}: {failure_message(exc)}")
    if inspect.isclass(target):
        own = not queue.startswith("_") and any(queue in vars(k) for k in target.__mro__ if k is not object)
        name = queue if own and callable(getattr(target, queue, None)) else "process"
        method = getattr(target, name, None)
        if method is None or not callable(method):
            return Handler(None, False, None, f"{queue}-method-missing",
                           f"{klass} has no method {queue!r} or 'process' to run the job")
        static = inspect.getattr_static(target, name)
        policy = _policy_of(method) or _policy_of(target)
        if isinstance(static, (staticmethod, classmethod)):
            call: Callable[[Job], Any] = method
        else:
            cls = target

            def call(job: Job, _cls: Any = cls, _name: str = name) -> Any:
                return getattr(_cls(), _name)(job)

            call.__wrapped__ = method  # type: ignore[attr-defined]
        return Handler(call, inspect.iscoroutinefunction(method), policy)
    if callable(target):
        return Handler(target, inspect.iscoroutinefunction(target)
                       or inspect.iscoroutinefunction(type(target).__call__), _policy_of(target))
    return Handler(None, False, None, f"{queue}-method-missing", f"{klass} is not a function or a class")


def failure_message(exc: BaseException) -> str:
    """``Class: message`` (bounded)."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + " ... (trimmed)"


def failure_traceback(exc: BaseException) -> str:
    """The formatted traceback, trimmed in the middle to a bounded size."""
    text = "".join(traceback.format_exception(exc))
    if len(text) > MAX_MESSAGE:
        half = MAX_MESSAGE // 2
        text = text[:half] + "\n... (trimmed) ...\n" + text[-half:]
    return text


def failure_group(queue: str, exc: BaseException) -> str:
    """``<queue>-<ExceptionClass>``."""
    return f"{queue}-{type(exc).__name__}"


__all__ = ["Backoff", "Handler", "JobAborted", "RetryPolicy", "constant", "exponential", "failure_group",
           "failure_message", "failure_traceback", "import_path", "linear", "resolve", "retry"]
