"""The management commands with names that need care: qe_put takes any legal queue, jid, tag and
dependency (``--tag``/``--depend`` as is, commas included); qe_stats and qe_sweep name them back;
an illegal name is a CommandError naming the argument, and nothing is written."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.core.management import CommandError, call_command

from queueengine import Client
from tests.queueengine.conftest import snapshot

NAMES = ["emails/daily", "café", "has space", "a,b", "it's \"q\" #1?", "user:42"]


@pytest.fixture
def client(redis_url: str, redis_conn: redis.Redis) -> Iterator[Client]:
    c = Client.from_url(redis_url, namespace="test", worker_name="tester")
    yield c
    c.close()


def run(*args: str, **options: Any) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


@pytest.mark.parametrize("name", NAMES)
def test_qe_put_stats_and_sweep_take_awkward_names(client: Client, name: str) -> None:
    dep = run("qe_put", name, "app.jobs.Dep", "--jid", name + "-dep").strip()
    jid = run("qe_put", name, "app.jobs.X", "--jid", name, "--tag", name, "--tag", "x, y", "--tags", "p,q",
              "--depend", dep).strip()
    job = client.jobs[jid]
    assert jid == name and job.queue.name == name
    assert set(job.tags) == {name, "x, y", "p", "q"} and job.dependencies == [dep]
    stats = json.loads(run("qe_stats", name, "--json"))
    assert [q["name"] for q in stats["queues"]] == [name]
    assert name in run("qe_stats")
    run("qe_sweep", "--queue", name, "--json")


@pytest.mark.parametrize("args", [("bad{q}", "app.X"), ("ok", "app.X", "--jid", "x:history"),
                                  ("ok", "app.X", "--tag", " edge"), ("ok", "app.X", "--depend", "a\tb"),
                                  (" lead", "app.X")])
def test_qe_put_refuses_illegal_names_and_writes_nothing(redis_conn: redis.Redis, args: tuple[str, ...]) -> None:
    before = snapshot(redis_conn)
    with pytest.raises(CommandError, match="invalid argument: (queue|jid|tags|depends) "):
        run("qe_put", *args)
    assert snapshot(redis_conn) == before
