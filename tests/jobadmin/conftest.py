"""Fixtures of the dashboard tests: an engine client without a test clock (the dashboard reads
Redis time), users with chosen permissions, and keyspace snapshots."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.contrib.auth.models import Permission
from django.test import Client as WebClient

from queueengine import Client


def snapshot(conn: redis.Redis) -> dict[bytes, bytes | None]:
    """Every key of the database with its DUMP (so any change shows up)."""
    return {k: conn.dump(k) for k in sorted(conn.keys("*"))}


@pytest.fixture
def qe(redis_url: str, redis_conn: redis.Redis) -> Iterator[Client]:
    """An engine client on the dashboard's namespace ('test'), on server time."""
    client = Client.from_url(redis_url, namespace="test", worker_name="tester")
    yield client
    client.close()


@pytest.fixture
def user_with(django_user_model: Any, db: Any) -> Callable[..., WebClient]:
    """``user_with("retry_jobs", ...)`` -> a logged-in web client of a staff user holding
    exactly those jobadmin permissions (``superuser=True`` for all of them)."""
    count = [0]

    def make(*perms: str, staff: bool = True, superuser: bool = False, csrf: bool = False) -> WebClient:
        count[0] += 1
        name = f"user{count[0]}"
        if superuser:
            user = django_user_model.objects.create_superuser(name, password="pw")
        else:
            user = django_user_model.objects.create_user(name, password="pw", is_staff=staff)
            for codename in perms:
                user.user_permissions.add(Permission.objects.get(content_type__app_label="jobadmin", codename=codename))
        web = WebClient(enforce_csrf_checks=csrf)
        web.force_login(user)
        return web

    return make


@pytest.fixture
def admin_web(user_with: Callable[..., WebClient]) -> WebClient:
    """A superuser's web client."""
    return user_with(superuser=True)


@pytest.fixture
def failed_jobs(qe: Client) -> Callable[..., list[str]]:
    """``failed_jobs(n, group=..., queue=...)`` -> jids of n jobs failed in that group."""

    def make(n: int, group: str = "work-ValueError", queue: str = "work", message: str = "bad input") -> list[str]:
        q = qe.queues[queue]
        jids = q.put_many([{"klass": "app.jobs.Broken", "data": {"i": i}, "retries": 0} for i in range(n)])
        for job in q.pop(n):
            job.fail(group, message)
        return jids

    return make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Operations a test started (group retry-all, act on all matching) end with the test body,
    before its fixtures go (the database among them): no thread outlives its test."""
    yield
    from jobadmin import bulk

    assert bulk.wait_all(60), "an operation thread did not end within 60 s"
