"""``manage.py qe_import_qless``: the command line of the Qless importer."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
import redis
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError

from queueengine import Client
from queueengine.devtools.testing import ManualClock
from tests.bridges.qless_fixtures import ClockedQless, build_keyspace, open_qless, open_qless_conn, source_url

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

qless_conn = pytest.fixture(open_qless_conn, name="qless_conn")
ql = pytest.fixture(open_qless, name="ql")


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("qe_import_qless", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def source(ql: ClockedQless, clock: ManualClock, redis_url: str) -> str:
    clock.set(time.time() - 5000)   # the command uses the server's clock: build the keyspace in step with it
    build_keyspace(ql, clock)
    return source_url(redis_url)


def test_help_has_examples() -> None:
    command = load_command_class("queueengine", "qe_import_qless")
    text = command.create_parser("manage.py", "qe_import_qless").format_help()
    assert "examples:" in text and "--dry-run" in text and "--namespace" in text


def test_imports_once_then_reports_already_imported(source: str, redis_url: str, redis_conn: redis.Redis) -> None:
    out, err = run(source, "--namespace", "moved")
    assert "imported 21 jobs" in out and "main: scheduled 1, waiting 7" in out
    assert "skipped: 1 tracked job no longer exists" in out
    assert "importing:" in err and "(100%)" in err            # the progress bar (not a terminal: by steps)
    moved = Client.from_url(redis_url, namespace="moved")
    try:
        assert [j.jid for j in moved.queues["main"].peek(2)] == ["w-b", "w-f"]
        assert str(moved.jobs["run-1"].state) == "running"
    finally:
        moved.close()
    again, _ = run(source, "--namespace", "moved")
    assert "imported 0 jobs" in again and "already imported: " in again and "nothing new" in again


def test_dry_run_and_json(source: str, redis_conn: redis.Redis) -> None:
    out, err = run(source, "--dry-run", "--json")
    report: dict[str, Any] = json.loads(out)
    assert report["dry_run"] is True and report["imported"]["bad"] == {"failed": 3}
    assert err == "" and redis_conn.dbsize() == 0


def test_bad_arguments_are_clear(redis_conn: redis.Redis) -> None:
    with pytest.raises(CommandError, match="SOURCE_URL must be a redis://"):
        run("http://example.invalid/")
    with pytest.raises(CommandError, match="chunk"):
        run("redis://127.0.0.1:1/0", "--chunk", "0")
    with pytest.raises(CommandError, match="cannot reach the Qless Redis"):
        run("redis://127.0.0.1:1/0", "--no-progress")
    assert redis_conn.dbsize() == 0
