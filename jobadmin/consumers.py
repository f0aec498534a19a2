"""The live websocket: a tab follows the topics of its page and receives its fragments.

Thin by design: on connect the consumer checks the user (staff, like the pages), works out the
page's topics from its URL, joins their groups and sends the current fragments; on every
``live.refresh`` it renders the page's fragments through the page's own view (same context
builders, same partials, the user's permissions and CSRF cookie) and sends them as one htmx
out-of-band message. A tab that is hidden says ``{"pause": true}`` and gets nothing until it
says ``{"pause": false}`` (then it gets one fresh render). Renders are shared by the tabs of
one user on the same page within one refresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.test import RequestFactory
from django.urls import NoReverseMatch, Resolver404, resolve, reverse

from jobadmin import conf, live
from jobadmin.middleware import REDIS_DOWN as REDIS_ERRORS
from jobadmin.permissions import can_view

log = logging.getLogger(__name__)



LISTEN_WAIT = 3.0
"""Longest wait for the bridge's subscription before the first render (Redis may be away)."""
REDIS_DOWN_BADGE = ('<span id="live-badge" hx-swap-oob="true" class="live-badge badge badge-offline" '
                    'title="the dashboard cannot reach Redis" data-live-state="redis-down">Redis unreachable</span>')
LIVE_BADGE = ('<span id="live-badge" hx-swap-oob="true" class="live-badge badge badge-live" '
              'title="live updates over a websocket" data-live-state="live">live</span>')
"""Sent instead of the fragments while Redis is away, and with the first fragments after it."""
CLOSE_FORBIDDEN = 4403
CLOSE_BAD_PAGE = 4400

_renders: dict[tuple[Any, ...], asyncio.Future[str]] = {}


def page_topics(page: str) -> list[str] | None:
    """The topics of a dashboard page URL, or None when it is not a live page. The path is
    resolved as Django resolves a request for it (percent-decoded first)."""
    try:
        match = resolve(_path_info(page))
    except Resolver404:
        return None
    if match.namespace != "jobadmin" or match.url_name not in live.PAGE_TOPICS:
        return None
    return live.PAGE_TOPICS[match.url_name](match.kwargs)


def _path_info(page: str) -> str:
    """The decoded path of a page URL (what a server hands Django as PATH_INFO)."""
    return RequestFactory().get(urlsplit(page).path).path_info


def live_page(view: str, name: str | None, query: str) -> tuple[str, list[str]] | None:
    """The page URL and topics of a live page named by its view and object name (the
    websocket parameters the dashboard sends), or None when there is no such live page."""
    kwargs = live.page_kwargs(view, name)
    if kwargs is None:
        return None
    try:
        path = reverse("jobadmin:" + view, kwargs=kwargs)
    except NoReverseMatch:
        return None
    return path + ("?" + query if query else ""), live.PAGE_TOPICS[view](kwargs)


def render_page_fragments(user: Any, page: str, cookies: dict[str, str], namespace: str) -> str:
    """Every fragment of ``page`` as ``user`` sees it in ``namespace`` (the page's view in
    live-render mode). ``user`` is the socket scope's lazy user (Channels' ``UserLazyObject``,
    which django-stubs does not accept as ``request.user``)."""
    parts = urlsplit(page)
    query = {**parse_qs(parts.query), "ns": [namespace]}
    request: HttpRequest = RequestFactory().get(parts.path, data=query, HTTP_X_LIVE_RENDER="1")
    request.user = user
    request.COOKIES.update(cookies)
    # the forms in the fragments must carry tokens for this browser's CSRF cookie
    CsrfViewMiddleware(lambda r: HttpResponse()).process_request(request)
    match = resolve(request.path_info)
    request.resolver_match = match
    response = match.func(request, *match.args, **match.kwargs)
    if not isinstance(response, HttpResponse) or response.status_code != 200:
        return ""
    return response.content.decode()


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """``ws/live/?view=<page's URL name>&name=<the object it shows>&query=<its query>&ns=<namespace>``
    (what the dashboard's pages send), or ``ws/live/?page=<dashboard URL>&ns=<namespace>``."""

    groups_joined: list[str]
    topics: list[str]

    async def connect(self) -> None:
        self.groups_joined, self.topics = [], []
        self.paused = False
        self.stale = False
        self.refresh_wanted = False
        self.refresher: asyncio.Task[None] | None = None
        self.bridge: live.Bridge | None = None
        self.redis_down = False
        user = self.scope.get("user")
        if user is None or not can_view(user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode(), keep_blank_values=True)

        def param(key: str) -> str | None:
            return query[key][0] if key in query else None

        ns = param("ns") or ""
        self.namespace = ns if ns in conf.namespaces() else conf.default_namespace()
        if param("view") is not None:
            found = live_page(param("view") or "", param("name"), param("query") or "")
            self.page, topics = found if found is not None else ("", None)
        else:
            self.page = param("page") or ""
            topics = page_topics(self.page) if self.page.startswith("/") else None
        if not topics:
            await self.close(code=CLOSE_BAD_PAGE)
            return
        self.topics = topics
        self.groups_joined = [live.group_name(self.namespace, t) for t in topics]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        self.bridge = await live.bridge_for(self.namespace)
        self.bridge.attach(self.topics)
        await self.bridge.sample_now()
        # render after the bridge listens, so nothing between this render and the next event is missed
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.bridge.listening.wait(), LISTEN_WAIT)
        await self._push(reason="connect")

    async def disconnect(self, code: int) -> None:
        if self.refresher is not None:
            self.refresher.cancel()
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        if self.bridge is not None:
            self.bridge.detach(self.topics)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """``{"pause": true|false}`` from the page (hidden / visible tab)."""
        if isinstance(content, dict) and isinstance(content.get("pause"), bool):
            self.paused = content["pause"]
            if not self.paused and self.stale:
                self.stale = False
                await self._push(reason="resume")

    async def live_refresh(self, message: dict[str, Any]) -> None:
        """A topic of this page changed: send the page's fragments again (the refreshes of
        several topics arriving together make one render)."""
        if self.paused:
            self.stale = True
            return
        self.refresh_wanted = True
        if self.refresher is None or self.refresher.done():
            self.refresher = asyncio.get_running_loop().create_task(self._refresh_soon())

    async def _refresh_soon(self) -> None:
        await asyncio.sleep(0.005)          # let the other topics' refreshes of this flush arrive
        while self.refresh_wanted and not self.paused:
            self.refresh_wanted = False
            await self._push(reason="refresh")

    async def _push(self, reason: str) -> None:
        user = self.scope["user"]
        cookies = dict(self.scope.get("cookies") or {})
        seq = self.bridge.pushes.total() if self.bridge is not None else 0
        key = (self.page, self.namespace, getattr(user, "pk", None), seq, reason == "connect")
        future = _renders.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            _renders[key] = future
            try:
                html = await sync_to_async(render_page_fragments, thread_sensitive=True)(
                    user, self.page, cookies, self.namespace)
                future.set_result(html)
            except REDIS_ERRORS as exc:
                log.warning("live render of %s: Redis is unreachable (%s)", self.page, exc)
                future.set_exception(exc)
            except Exception as exc:
                log.exception("live render of %s failed", self.page)
                future.set_exception(exc)
            finally:
                asyncio.get_running_loop().call_later(2.0, _renders.pop, key, None)
        try:
            html = await asyncio.shield(future)
        except REDIS_ERRORS:
            if not self.redis_down:
                self.redis_down = True
                await self.send(text_data=REDIS_DOWN_BADGE)
            return
        except Exception:
            return
        if html:
            if self.redis_down:
                self.redis_down = False
                html = LIVE_BADGE + html
            await self.send(text_data=html)
