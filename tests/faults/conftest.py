"""Fixtures of the fault and resource-bound tests: the engine fixtures of tests/queueengine."""

from tests.queueengine.conftest import other, q, snap, unchanged  # noqa: F401 - fixtures re-exported
