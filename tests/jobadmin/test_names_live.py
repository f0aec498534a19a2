"""The live push with names that need care in a URL: the page's own ws-connect URL carries the
name, and the pushed fragments are the same object the page showed (never "Nothing here." or
"This job no longer exists" for a job that is there)."""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client as WebClient
from django.urls import reverse
from django.utils.html import escape

from jobadmin import live
from queueengine import Client

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")
CSRF_SECRET = "A" * 16 + "b" * 16   # a browser's csrftoken cookie

NAMES = ["emails/daily", "café", "has space", "naïve-job", "a%2Fb?c#d", "it's \"q\" <b>", "..", "~7E"]


@pytest.fixture
async def bridges() -> AsyncIterator[None]:
    yield
    await live.shutdown()


def staff_page(django_user_model: Any, url: str) -> tuple[str, bytes]:
    """The page as a staff user sees it, and that user's Cookie header."""
    user = django_user_model.objects.create_user(f"live{abs(hash(url))}", password="pw", is_staff=True)
    web = WebClient()
    web.force_login(user)
    response = web.get(url)
    assert response.status_code == 200, url
    return response.content.decode(), f"sessionid={web.cookies['sessionid'].value}; csrftoken={CSRF_SECRET}".encode()


async def connect_like_the_page(page_html: str, cookie: bytes) -> WebsocketCommunicator:
    """Open the socket exactly as the page's htmx ws-connect attribute says."""
    from config.asgi import application

    found = re.search(r'ws-connect="([^"]+)"', page_html)
    assert found, "the page has no live socket"
    url = htmllib.unescape(found.group(1))
    comm = WebsocketCommunicator(application, url, headers=[(b"host", b"127.0.0.1"), ORIGIN, (b"cookie", cookie)])
    connected, _ = await comm.connect(timeout=20)
    assert connected, url
    return comm


@pytest.mark.parametrize("name", NAMES)
async def test_queue_page_push_shows_the_same_queue(django_user_model: Any, qe: Client, bridges: None,
                                                     name: str) -> None:
    """A queue page of an awkward name: the first push and the push after a new job show that
    queue's jobs, as the page did."""
    first_jid = await sync_to_async(qe.queues[name].put)("app.jobs.Live", {}, jid=name + "-1")
    url = reverse("jobadmin:queue", args=[name]) + "?tab=waiting"
    page, cookie = await sync_to_async(staff_page)(django_user_model, url)
    assert escape(first_jid)[:14] in page or escape(first_jid) in page
    comm = await connect_like_the_page(page, cookie)
    pushed = await comm.receive_from(timeout=20)
    assert "Nothing here." not in pushed and 'id="queue_tab"' in pushed
    await sync_to_async(qe.queues[name].put)("app.jobs.Live", {}, jid=name + "-2")
    pushed = await comm.receive_from(timeout=20)
    assert "Nothing here." not in pushed and pushed.count("app.jobs.Live") >= 2
    await comm.disconnect()


@pytest.mark.parametrize("name", NAMES)
async def test_job_page_push_shows_the_same_job(django_user_model: Any, qe: Client, bridges: None,
                                                 name: str) -> None:
    """A job page of an awkward jid in an awkward queue: pushes show that job as it changes."""
    jid = await sync_to_async(qe.queues[name].put)("app.jobs.Story", {}, jid=name)
    page, cookie = await sync_to_async(staff_page)(django_user_model, reverse("jobadmin:job", args=[jid]))
    comm = await connect_like_the_page(page, cookie)
    pushed = await comm.receive_from(timeout=20)
    assert "no longer exists" not in pushed and "badge-waiting" in pushed and escape(name) in pushed
    await sync_to_async(qe.pop_from)([name], 1)
    pushed = await comm.receive_from(timeout=20)
    assert "no longer exists" not in pushed and "badge-running" in pushed and escape(name) in pushed
    await comm.disconnect()


@pytest.mark.parametrize("name", ["emails/daily", "café", "it's \"q\" <b>"])
async def test_group_and_worker_pages_are_live(django_user_model: Any, qe: Client, bridges: None, name: str) -> None:
    """A failure group page and a worker page of awkward names connect and show their object."""
    jid = await sync_to_async(qe.queues["work"].put)("app.jobs.G", {}, retries=0)
    job = (await sync_to_async(qe.pop_from)(["work"], 1, name))[0]
    await sync_to_async(job.fail)(name, "boom")
    for url in (reverse("jobadmin:failure_group", args=[name]), reverse("jobadmin:worker", args=[name])):
        page, cookie = await sync_to_async(staff_page)(django_user_model, url)
        comm = await connect_like_the_page(page, cookie)
        pushed = await comm.receive_from(timeout=20)
        if "failed" in url:
            assert "Nothing here." not in pushed and escape(jid)[:10] in pushed
        await comm.disconnect()
