"""The qe_* management commands, in-process through ``call_command`` (Redis is real)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError

from queueengine import Client
from queueengine.conf import get_client, settings

NS = "test"  # tests/settings.py QUEUEENGINE["NAMESPACE"]
COMMANDS = ("qe_worker", "qe_put", "qe_stats", "qe_sweep", "qe_config")


@pytest.fixture
def client(redis_url: str, redis_conn: redis.Redis) -> Iterator[Client]:
    c = Client.from_url(redis_url, namespace=NS, worker_name="tester")
    yield c
    c.close()


def run(*args: str, **options: Any) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


@pytest.mark.parametrize("name", COMMANDS)
def test_help_explains_the_command_with_examples(name: str) -> None:
    command = load_command_class("queueengine", name)
    text = command.create_parser("manage.py", name).format_help()
    assert command.help.split(":")[0].split(".")[0] in text
    assert "examples:" in text and f"manage.py {name}" in text
    for line in text.splitlines():
        if line.strip().startswith("manage.py"):
            assert "  " in line.strip() or line.strip().count(" ") >= 1


# ---------------------------------------------------------------------- conf
def test_conf_reads_settings_lazily_with_defaults(settings: Any, redis_url: str) -> None:
    from queueengine.conf import settings as qe

    settings.QUEUEENGINE = {"URL": redis_url, "NAMESPACE": "other", "QUEUES": ["a", "b"]}
    assert qe.NAMESPACE == "other" and qe.QUEUES == ("a", "b")
    assert qe.CONCURRENCY == 4 and qe.MODE == "reliable", "missing keys take the defaults"
    settings.QUEUEENGINE = {"URL": redis_url, "CONCURRENCY": 9}
    assert qe.CONCURRENCY == 9 and qe.NAMESPACE == "default", "read again on every access"
    client = get_client(worker_name="w1")
    try:
        assert client.namespace == "default" and client.worker_name == "w1"
    finally:
        client.close()
    assert qe.as_dict()["CONCURRENCY"] == 9


# ---------------------------------------------------------------------- qe_put
def test_qe_put_prints_the_jid_and_applies_every_option(client: Client) -> None:
    dep = client.queues["q"].put("tests.jobfixtures.noop", {})
    jid = run("qe_put", "q", "tests.jobfixtures.add", "--data", '{"x": 1, "y": 2}', "--priority", "7",
              "--tags", "a, b", "--retries", "2", "--depends", dep, "--jid", "my-jid").strip()
    assert jid == "my-jid"
    job = client.jobs[jid]
    assert job.data == {"x": 1, "y": 2} and job.priority == 7 and sorted(job.tags) == ["a", "b"]
    assert job.original_retries == 2 and job.dependencies == [dep] and job.state == "depends"
    delayed = run("qe_put", "q", "tests.jobfixtures.noop", "--delay", "60").strip()
    assert client.jobs[delayed].state == "scheduled"


def test_qe_put_bad_arguments_name_the_argument(client: Client) -> None:
    with pytest.raises(CommandError, match="--data"):
        run("qe_put", "q", "tests.jobfixtures.add", "--data", "{not json")
    with pytest.raises(CommandError, match="--delay"):
        run("qe_put", "q", "tests.jobfixtures.add", "--delay", "-1")
    with pytest.raises(CommandError, match="--retries"):
        run("qe_put", "q", "tests.jobfixtures.add", "--retries", "-3")
    with pytest.raises(CommandError, match="--unique needs --jid"):
        run("qe_put", "q", "tests.jobfixtures.add", "--unique")
    with pytest.raises(CommandError, match="queue"):
        run("qe_put", "bad{queue}", "tests.jobfixtures.add")
    run("qe_put", "q", "tests.jobfixtures.add", "--jid", "once")
    with pytest.raises(CommandError, match="DuplicateJob"):
        run("qe_put", "q", "tests.jobfixtures.add", "--jid", "once", "--unique")
    with pytest.raises(CommandError, match="priority"):
        run("qe_put", "q", "tests.jobfixtures.add", "--priority", "high")


# ---------------------------------------------------------------------- qe_worker
def test_qe_worker_burst_works_the_queues_in_this_process(client: Client) -> None:
    jids = [client.queues["high"].put("tests.jobfixtures.add", {"x": i, "y": 10}) for i in range(3)]
    low = client.queues["low"].put("tests.jobfixtures.boom", {})
    out = run("qe_worker", "-q", "high", "-q", "low", "--burst", "--concurrency", "2", "--name", "cmd-worker")
    assert "worker cmd-worker: queues high, low, concurrency 2, burst" in out
    assert [client.jobs[j].result for j in jids] == [10, 11, 12]
    assert client.jobs[low].failure["group"] == "low-KeyError"


def test_qe_worker_defaults_come_from_settings(client: Client, settings: Any, redis_url: str) -> None:
    settings.QUEUEENGINE = {"URL": redis_url, "NAMESPACE": NS, "QUEUES": ["from-settings"], "CONCURRENCY": 3}
    jid = client.queues["from-settings"].put("tests.jobfixtures.add", {"x": 1, "y": 1})
    out = run("qe_worker", "--burst")
    assert "queues from-settings, concurrency 3" in out
    assert client.jobs[jid].result == 2


def test_qe_worker_bad_arguments() -> None:
    with pytest.raises(CommandError, match="--concurrency"):
        run("qe_worker", "--burst", "--concurrency", "0")
    with pytest.raises(CommandError, match="--processes"):
        run("qe_worker", "--burst", "--processes", "0")
    with pytest.raises(CommandError, match="--queue lists a queue twice"):
        run("qe_worker", "-q", "a", "-q", "a")
    with pytest.raises(CommandError, match="--mode simple: .*--handler"):
        run("qe_worker", "--burst", "--mode", "simple")
    with pytest.raises(CommandError, match="--prefetch"):
        run("qe_worker", "--burst", "--prefetch", "-1")
    with pytest.raises(CommandError, match="--shutdown-timeout"):
        run("qe_worker", "--burst", "--shutdown-timeout", "-1")
    with pytest.raises(CommandError, match="--mode"):
        run("qe_worker", "--mode", "bogus")
    with pytest.raises(CommandError, match="--handler: .*no_such"):
        run("qe_worker", "--mode", "simple", "--handler", "tests.jobfixtures.no_such")
    with pytest.raises(CommandError, match="--handler is for"):
        run("qe_worker", "--handler", "tests.jobfixtures.mode_add")
    with pytest.raises(CommandError, match="--burst works in reliable mode only"):
        run("qe_worker", "--mode", "recoverable", "--handler", "tests.jobfixtures.mode_add", "--burst")


# ---------------------------------------------------------------------- qe_stats
def test_qe_stats_table_and_json(client: Client) -> None:
    q = client.queues["reports"]
    q.put("tests.jobfixtures.add", {"x": 1, "y": 1})
    q.put("tests.jobfixtures.boom", {})
    q.put("tests.jobfixtures.add", {"x": 1, "y": 1}, delay=60)
    run("qe_worker", "-q", "reports", "--burst")
    q.put("tests.jobfixtures.noop", {})
    text = run("qe_stats")
    assert "reports" in text and "reports-KeyError 1" in text and "waiting" in text
    data = json.loads(run("qe_stats", "reports", "--json"))
    counts = data["queues"][0]
    assert counts["name"] == "reports" and counts["waiting"] == 1 and counts["scheduled"] == 1
    assert data["stats"]["reports"]["run"]["count"] == 1
    assert data["stats"]["reports"]["failures"] == 1
    assert "histogram" not in data["stats"]["reports"]["wait"]
    assert data["failed"] == {"reports-KeyError": 1}


def test_qe_stats_unknown_queue(client: Client) -> None:
    client.queues["known"].put("tests.jobfixtures.noop", {})
    with pytest.raises(CommandError, match="queue: no queue named 'nope'.*known"):
        run("qe_stats", "nope")


def test_qe_stats_empty() -> None:
    assert "no queues yet" in run("qe_stats")


# ---------------------------------------------------------------------- qe_sweep
def test_qe_sweep_runs_housekeeping_and_reports(client: Client) -> None:
    text = run("qe_sweep")
    assert text.startswith("housekeep:")
    data = json.loads(run("qe_sweep", "-q", "q", "--json"))
    assert isinstance(data["housekeep"], dict)


def test_qe_sweep_bad_arguments() -> None:
    with pytest.raises(CommandError, match="--older-than"):
        run("qe_sweep", "--older-than", "-5")
    with pytest.raises(CommandError, match="queue"):
        run("qe_sweep", "-q", "bad{q}")


# ---------------------------------------------------------------------- qe_config
def test_qe_config_show_set_unset(client: Client) -> None:
    everything = run("qe_config")
    assert "heartbeat" in everything and "grace-period" in everything
    assert run("qe_config", "heartbeat", "120").strip() == "heartbeat = 120"
    assert client.config["heartbeat"] == 120
    assert run("qe_config", "heartbeat").strip() == "120"
    assert json.loads(run("qe_config", "heartbeat", "--json")) == {"heartbeat": 120}
    run("qe_config", "application", "my jobs")
    assert client.config["application"] == "my jobs"
    assert run("qe_config", "--unset", "heartbeat").strip() == "unset heartbeat"
    assert client.config["heartbeat"] == 60


def test_qe_config_bad_arguments(client: Client) -> None:
    with pytest.raises(CommandError, match="key: no option named 'nonsense'"):
        run("qe_config", "nonsense")
    with pytest.raises(CommandError, match="--unset: no option named 'nonsense'"):
        run("qe_config", "--unset", "nonsense")
    with pytest.raises(CommandError, match="--unset takes"):
        run("qe_config", "heartbeat", "--unset", "heartbeat")


def test_settings_namespace_is_the_one_tests_use() -> None:
    assert settings.NAMESPACE == NS


def test_qe_sweep_runs_the_recoverable_sweep_in_that_mode(client: Client, settings: Any, redis_url: str) -> None:
    settings.QUEUEENGINE = {"URL": redis_url, "NAMESPACE": NS, "MODE": "recoverable"}
    data = json.loads(run("qe_sweep", "--older-than", "0", "--json"))
    assert data["recoverable"] == {"requeued": 0}
    settings.QUEUEENGINE = {"URL": redis_url, "NAMESPACE": NS, "MODE": "reliable"}
    assert "recoverable" not in json.loads(run("qe_sweep", "--json"))
