"""Live updates: the websocket consumer (auth, origin, groups, fragments, pause) and the bridge
(one subscriber per process, bursts coalesced, reconnect after a Redis restart), against the
real Redis and a real Channels layer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client as WebClient

from jobadmin import live
from queueengine import Client
from queueengine.devtools.embedded import EmbeddedRedis

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")
CSRF_SECRET = "A" * 16 + "b" * 16   # a browser's csrftoken cookie (32 characters: the secret itself)


@pytest.fixture
async def bridges() -> AsyncIterator[None]:
    """Stop this loop's bridges after the test."""
    yield
    await live.shutdown()


def session_cookie(django_user_model: Any, **flags: Any) -> bytes:
    """A logged-in session for a new user, as a Cookie header value."""
    name = f"u{time.monotonic_ns()}"
    if flags.pop("superuser", False):
        user = django_user_model.objects.create_superuser(name, password="pw")
    else:
        user = django_user_model.objects.create_user(name, password="pw", **flags)
    web = WebClient()
    web.force_login(user)
    return f"sessionid={web.cookies['sessionid'].value}; csrftoken={CSRF_SECRET}".encode()


async def connect(page: str, cookie: bytes | None, origin: tuple[bytes, bytes] | None = ORIGIN,
                  host: bytes = b"127.0.0.1") -> tuple[Any, bool, Any]:
    """A websocket handshake with the project's ASGI app, as a browser on ``http://<host>`` makes it."""
    from urllib.parse import urlencode

    from config.asgi import application

    headers = [(b"host", host)] + ([origin] if origin is not None else [])
    if cookie is not None:
        headers.append((b"cookie", cookie))
    comm = WebsocketCommunicator(application, "/jobs/ws/live/?" + urlencode({"page": page}), headers=headers)
    connected, code = await comm.connect(timeout=20)
    return comm, connected, code


async def staff_cookie(django_user_model: Any) -> bytes:
    return await sync_to_async(session_cookie)(django_user_model, is_staff=True)


async def test_anonymous_non_staff_and_foreign_origin_are_refused(django_user_model: Any, qe: Client,
                                                                  bridges: None) -> None:
    """No session, a non-staff session, or another site's origin: the socket is closed."""
    comm, connected, code = await connect("/jobs/", None)
    assert not connected and code == 4403
    plain = await sync_to_async(session_cookie)(django_user_model, is_staff=False)
    comm, connected, code = await connect("/jobs/", plain)
    assert not connected and code == 4403
    staff = await staff_cookie(django_user_model)
    comm, connected, _ = await connect("/jobs/", staff, origin=(b"origin", b"http://evil.example"))
    assert not connected
    comm, connected, code = await connect("/admin/", staff)
    assert not connected and code == 4400


async def test_the_origin_must_be_the_sockets_own_scheme_host_and_port(django_user_model: Any, qe: Client,
                                                                      settings: Any, bridges: None) -> None:
    """Same host, another port: refused (AllowedHostsOriginValidator would let it in); the
    socket's own origin is accepted, so is an origin QUEUEENGINE["ALLOWED_ORIGINS"] lists; no
    Origin, https for a ws:// socket, or a host outside ALLOWED_HOSTS is refused."""
    staff = await staff_cookie(django_user_model)
    own = (b"origin", b"http://127.0.0.1:8000")
    for origin, host in [((b"origin", b"http://127.0.0.1:9"), b"127.0.0.1:8000"),
                         ((b"origin", b"http://127.0.0.1"), b"127.0.0.1:8000"),
                         ((b"origin", b"https://127.0.0.1:8000"), b"127.0.0.1:8000"),
                         (None, b"127.0.0.1:8000"),
                         ((b"origin", b"http://evil.example:8000"), b"evil.example:8000")]:
        comm, connected, code = await connect("/jobs/", staff, origin=origin, host=host)
        assert not connected and code == 1000, (origin, host)   # denied at the handshake (HTTP 403)
    comm, connected, _ = await connect("/jobs/", staff, origin=own, host=b"127.0.0.1:8000")
    assert connected
    await comm.disconnect()
    settings.QUEUEENGINE = {**settings.QUEUEENGINE, "ALLOWED_ORIGINS": ["https://ops.example.com"]}
    comm, connected, _ = await connect("/jobs/", staff, origin=(b"origin", b"https://ops.example.com:443"),
                                       host=b"127.0.0.1:8000")
    assert connected
    await comm.disconnect()


async def test_joins_the_groups_of_its_page_and_gets_fragments(django_user_model: Any, qe: Client,
                                                                bridges: None) -> None:
    """A queue page joins that queue's group only; it gets the current fragments at once and
    fresh ones when a job is put there, rendered by the page's own templates."""
    staff = await staff_cookie(django_user_model)
    comm, connected, _ = await connect("/jobs/queue/work/?tab=waiting", staff)
    assert connected
    first = await comm.receive_from(timeout=20)
    assert first.lstrip().startswith('<section id="queue_counts"') and '<section id="queue_tab"' in first
    layer = get_channel_layer()
    mine = live.group_name("test", "queue.work")
    assert set(layer.groups.get(mine, {})) and not layer.groups.get(live.group_name("test", "overview"))
    jid = await sync_to_async(qe.queues["work"].put)("app.jobs.Live", {"n": 1})
    pushed = await comm.receive_from(timeout=20)
    assert jid in pushed and "app.jobs.Live" in pushed
    await comm.disconnect()
    assert not layer.groups.get(mine)


async def test_pushed_forms_carry_tokens_for_the_browsers_csrf_cookie(django_user_model: Any, qe: Client,
                                                                      bridges: None) -> None:
    """A form that arrives over the socket must post: its token matches the tab's cookie."""
    import re

    from django.middleware.csrf import _unmask_cipher_token  # type: ignore[attr-defined]

    jid = await sync_to_async(qe.queues["work"].put)("app.jobs.X", {})
    cookie = await sync_to_async(session_cookie)(django_user_model, superuser=True)
    comm, connected, _ = await connect(f"/jobs/job/{jid}/", cookie)
    assert connected
    html = await comm.receive_from(timeout=20)
    tokens = set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', html))
    assert tokens and {_unmask_cipher_token(t) for t in tokens} == {CSRF_SECRET}
    await comm.disconnect()


async def quiet_bridge() -> live.Bridge:
    """This loop's bridge, started before any tab and past its first sample.

    Its first sample then finds no tab and stays passive, so the first tab's own sample makes
    it the leader without a catch-up refresh: from then on a queue page is pushed only what
    the events of its queue cause (the sampler's periodic refreshes are the overview's and the
    workers' topics, or a queue whose stalled count changes)."""
    bridge = await live.bridge_for("test")
    await asyncio.wait_for(bridge.ready.wait(), 10)
    return bridge


async def wait_until(predicate: Any, what: str, timeout: float = 10.0) -> None:
    """Poll ``predicate()`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def receive_containing(comm: Any, text: str, timeout: float = 10.0) -> list[str]:
    """Every message up to and including the first that contains ``text`` (fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    got: list[str] = []
    while not got or text not in got[-1]:
        left = deadline - time.monotonic()
        assert left > 0, f"no message containing {text!r} within {timeout} s (got {len(got)} others)"
        got.append(await comm.receive_from(timeout=left))
    return got


async def test_never_gets_fragments_of_other_groups(django_user_model: Any, qe: Client, bridges: None) -> None:
    """Events of another queue send nothing to this page: once the bridge has handled twenty
    of them, this page's topic has had no push, and the next message the tab receives is the
    one announcing a job of its own queue."""
    bridge = await quiet_bridge()
    staff = await staff_cookie(django_user_model)
    comm, connected, _ = await connect("/jobs/queue/mine/?tab=waiting", staff)
    assert connected
    await comm.receive_from(timeout=20)
    layer = get_channel_layer()
    assert not layer.groups.get(live.group_name("test", "queue.theirs"))
    before = bridge.pushes["queue.mine"]
    await sync_to_async(qe.queues["theirs"].put_many)([("app.jobs.X", {"i": i}) for i in range(20)])
    await wait_until(lambda: bridge.events_seen >= 20 and not bridge.dirty, "the bridge to handle 20 events")
    assert bridge.pushes["queue.mine"] == before, "another queue's events pushed this page's topic"
    jid = await sync_to_async(qe.queues["mine"].put)("app.jobs.Mine", {})
    first = await comm.receive_from(timeout=20)
    assert jid in first, "the tab received something before its own queue's fragment"
    await comm.disconnect()


async def test_job_page_follows_its_job(django_user_model: Any, qe: Client, bridges: None) -> None:
    """A job page is refreshed as its job runs and completes."""
    staff = await staff_cookie(django_user_model)
    jid = await sync_to_async(qe.queues["work"].put)("app.jobs.Story", {})
    comm, connected, _ = await connect(f"/jobs/job/{jid}/", staff)
    assert connected
    assert "badge-waiting" in await comm.receive_from(timeout=20)
    job = (await sync_to_async(qe.queues["work"].pop)(1))[0]
    assert "badge-running" in await comm.receive_from(timeout=20)
    await sync_to_async(job.complete)({"answer": 42})
    html = await comm.receive_from(timeout=20)
    assert "badge-complete" in html and "&quot;answer&quot;: 42" in html and 'id="job_outcome"' in html
    await comm.disconnect()


async def test_the_explorer_follows_its_operations(django_user_model: Any, qe: Client, failed_jobs: Any,
                                                  bridges: None) -> None:
    """The explorer is pushed its "act on all matching" operations only (never its results, which
    it fills itself): an operation started after the tab opened arrives, then its end."""
    from jobadmin import bulk
    from jobadmin.explorer import parse

    jids = await sync_to_async(failed_jobs)(3)
    staff = await staff_cookie(django_user_model)
    comm, connected, _ = await connect("/jobs/search/?q=state%3Afailed", staff)
    assert connected
    first = await comm.receive_from(timeout=20)
    assert first.lstrip().startswith('<section id="operations"') and "explorer_results" not in first
    filters = parse("state:failed", 0).find_kwargs()
    op = await sync_to_async(bulk.start_matching)(qe, bulk.Action.make("retry"), "state:failed", filters, "t")
    got = await receive_containing(comm, f'data-op="{op["id"]}" data-state="done"', timeout=20)
    assert "3</span> done" in got[-1] and "explorer_results" not in "".join(got)
    assert [j.state.value for j in await sync_to_async(qe.jobs.get)(*jids)] == ["waiting"] * 3
    await comm.disconnect()


async def test_hidden_tab_pauses_then_catches_up(django_user_model: Any, qe: Client, bridges: None) -> None:
    """``{"pause": true}`` stops pushes; ``{"pause": false}`` sends one fresh render.

    A second, visible tab on the same page is the probe: once it has received the new job,
    the refresh reached the page's group; the hidden tab has sent nothing with that job, and
    sends it as soon as it is visible again."""
    await quiet_bridge()
    staff = await staff_cookie(django_user_model)
    hidden, connected, _ = await connect("/jobs/queue/work/?tab=waiting", staff)
    assert connected
    await hidden.receive_from(timeout=20)
    await hidden.send_json_to({"pause": True})
    probe, connected, _ = await connect("/jobs/queue/work/?tab=waiting", staff)
    assert connected
    await probe.receive_from(timeout=20)
    jid = await sync_to_async(qe.queues["work"].put)("app.jobs.X", {})
    await receive_containing(probe, jid)
    while not await hidden.receive_nothing(timeout=0.2):   # only renders from before the put may be queued
        assert jid not in await hidden.receive_from(), "a paused tab was pushed a fragment"
    await hidden.send_json_to({"pause": False})
    await receive_containing(hidden, jid)
    await hidden.disconnect()
    await probe.disconnect()


async def test_one_subscriber_per_process(django_user_model: Any, qe: Client, redis_conn: redis.Redis,
                                          bridges: None) -> None:
    """Five tabs on three pages share one pub/sub subscription to the namespace's events."""
    staff = await staff_cookie(django_user_model)
    comms = []
    for page in ("/jobs/", "/jobs/", "/jobs/workers/", "/jobs/queue/a/", "/jobs/failed/"):
        comm, connected, _ = await connect(page, staff)
        assert connected
        await comm.receive_from(timeout=20)
        comms.append(comm)
    channel = qe.keys.events
    await wait_until(lambda: redis_conn.pubsub_numsub(channel)[0][1] >= 1, "the subscription", timeout=20)
    assert redis_conn.pubsub_numsub(channel)[0][1] == 1
    for comm in comms:
        await comm.disconnect()


async def test_a_burst_of_ten_thousand_events_is_a_handful_of_pushes(django_user_model: Any, qe: Client,
                                                                       bridges: None) -> None:
    """10,000 puts: the overview is pushed a bounded number of times, not 10,000 (at most one
    push per coalescing window while they come in, however slowly a loaded machine reads them)."""
    staff = await staff_cookie(django_user_model)
    comm, connected, _ = await connect("/jobs/", staff)
    assert connected
    await comm.receive_from(timeout=20)
    bridge = await live.bridge_for("test")
    topics = ("overview", "failures", "workers")
    before = {t: bridge.pushes[t] for t in topics}
    began = time.monotonic()
    await sync_to_async(qe.queues["burst"].put_many)([("app.jobs.X", {"i": i}) for i in range(10_000)])
    await wait_until(lambda: bridge.events_seen >= 10_000 and not bridge.dirty,
                     "the bridge to handle 10,000 events", timeout=60)
    received = await receive_containing(comm, "10,000", timeout=30)
    took = time.monotonic() - began
    pushes = {t: bridge.pushes[t] - before[t] for t in topics}
    assert 1 <= pushes["overview"] <= 3 + took / live.COALESCE and pushes["overview"] < 1_000, (pushes, took)
    assert 1 <= len(received) <= sum(pushes.values())
    await comm.disconnect()


async def test_bridge_reconnects_after_a_redis_restart(django_user_model: Any, tmp_path: Path, settings: Any,
                                                       bridges: None) -> None:
    """Redis restarts under the bridge: it reconnects with backoff and the page catches up."""
    server = EmbeddedRedis(tmp_path, appendonly=True)
    url = server.start()
    try:
        settings.QUEUEENGINE = {**settings.QUEUEENGINE, "URL": url}
        engine = Client.from_url(url, namespace="test")
        staff = await staff_cookie(django_user_model)
        comm, connected, _ = await connect("/jobs/queue/restart/?tab=waiting", staff)
        assert connected
        await comm.receive_from(timeout=20)
        bridge = await live.bridge_for("test")
        await sync_to_async(server.restart)()
        engine.close()
        engine = Client.from_url(url, namespace="test")
        jid = await sync_to_async(engine.queues["restart"].put)("app.jobs.After", {})
        deadline = time.monotonic() + 30
        seen = False
        while not seen and time.monotonic() < deadline:
            if not await comm.receive_nothing(timeout=0.2):
                seen = jid in await comm.receive_from()
            else:
                # the put may have landed while the bridge was still resubscribing (pub/sub keeps
                # nothing): any later event tells it the gap is over, and it refreshes every page
                await sync_to_async(engine.queues["other"].put)("app.jobs.Nudge", {})
        assert seen, "the page did not catch up after the restart"
        while bridge.reconnects == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert bridge.reconnects >= 1, "the bridge did not notice that another server answers"
        await comm.disconnect()
        engine.close()
    finally:
        await live.shutdown()
        server.stop()


async def test_sampler_pushes_what_no_event_announces(django_user_model: Any, qe: Client, bridges: None) -> None:
    """A lease that runs out publishes nothing; the sampler notices the job went stalled."""
    await sync_to_async(qe.config.__setitem__)("heartbeat", 1)
    await sync_to_async(qe.queues["lease"].put)("app.jobs.Slow", {})
    job = (await sync_to_async(qe.queues["lease"].pop)(1))[0]
    staff = await staff_cookie(django_user_model)
    comm, connected, _ = await connect("/jobs/queue/lease/?tab=stalled", staff)
    assert connected
    first = await comm.receive_from(timeout=20)
    assert job.jid not in first
    deadline = time.monotonic() + 20
    stalled = False
    while not stalled and time.monotonic() < deadline:
        if not await comm.receive_nothing(timeout=0.2):
            stalled = job.jid in await comm.receive_from()
    assert stalled, "the stalled job never appeared"
    await comm.disconnect()


async def test_bridge_starts_and_stops_with_the_asgi_app(qe: Client, redis_conn: redis.Redis) -> None:
    """Under a lifespan-speaking server the bridge starts at startup (before any tab), stays
    passive while no tab is open (no leadership, no sampling), and stops at shutdown, giving up
    its subscription."""
    from asgiref.testing import ApplicationCommunicator

    from jobadmin.live import LiveApplication

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("lifespan must not reach the wrapped app")

    app = LiveApplication(inner)
    comm = ApplicationCommunicator(app, {"type": "lifespan"})
    await comm.send_input({"type": "lifespan.startup"})
    assert (await comm.receive_output(timeout=20))["type"] == "lifespan.startup.complete"
    bridge = await live.bridge_for("test")
    await asyncio.wait_for(bridge.listening.wait(), 20)
    await asyncio.wait_for(bridge.ready.wait(), 20)
    assert redis_conn.pubsub_numsub(qe.keys.events)[0][1] == 1
    assert redis_conn.get(qe.keys.key("dash:live-leader")) is None
    redis_conn.config_resetstat()
    taken = bridge.samples
    await wait_until(lambda: bridge.samples >= taken + 3, "three periodic samples", timeout=30)
    stats = redis_conn.info("commandstats")
    assert "cmdstat_set" not in stats and "cmdstat_info" not in stats, "an idle bridge sampled Redis"
    await comm.send_input({"type": "lifespan.shutdown"})
    assert (await comm.receive_output(timeout=20))["type"] == "lifespan.shutdown.complete"
    await wait_until(lambda: redis_conn.pubsub_numsub(qe.keys.events)[0][1] == 0, "the unsubscription", timeout=20)


async def test_a_tab_makes_its_bridge_lead_and_closing_it_gives_the_lead_up(django_user_model: Any, qe: Client,
                                                                             redis_conn: redis.Redis,
                                                                             bridges: None) -> None:
    """The leader lease is held only while this process has tabs open."""
    staff = await staff_cookie(django_user_model)
    comm, connected, _ = await connect("/jobs/", staff)
    assert connected
    await comm.receive_from(timeout=20)
    bridge = await live.bridge_for("test")
    assert bridge.leader and redis_conn.get(qe.keys.key("dash:live-leader")) == bridge.token.encode()
    assert b"overview" in redis_conn.zrange(qe.keys.key("dash:live-topics"), 0, -1)
    await comm.disconnect()
    await wait_until(lambda: redis_conn.get(qe.keys.key("dash:live-leader")) is None and not bridge.leader,
                     "the bridge to give the lead up", timeout=20)
