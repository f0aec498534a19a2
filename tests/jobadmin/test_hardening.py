"""Web hardening: the dashboard's Content-Security-Policy (and no inline script or style for it
to block), and a clear 503 when Redis is unreachable: pages, the JSON API, the live badge."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client as WebClient

from jobadmin import live
from jobadmin.middleware import redacted_url
from queueengine import Client
from queueengine.devtools.embedded import EmbeddedRedis, free_port
from tests.jobadmin.test_live import connect, session_cookie

INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style\b", re.I), "a <style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an inline event handler"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def dashboard_pages(qe: Client, failed: list[str]) -> list[str]:
    jid = qe.queues["work"].put("app.jobs.X", {"n": 1})
    return ["/jobs/", "/jobs/queue/work/", "/jobs/queue/work/?tab=waiting", f"/jobs/job/{jid}/",
            f"/jobs/job/{failed[0]}/", "/jobs/failed/", "/jobs/failed/work-ValueError/", "/jobs/workers/",
            "/jobs/tracked/", "/jobs/completed/", "/jobs/recurring/", "/jobs/tags/", "/jobs/search/",
            "/jobs/config/", "/jobs/no-such-page/"]


def test_every_dashboard_page_has_the_policy_and_nothing_inline(admin_web: WebClient, qe: Client,
                                                                  failed_jobs: Any) -> None:
    """script-src and style-src 'self' without 'unsafe-inline'; the pages carry no inline script,
    style, style attribute or handler the policy would block."""
    for path in dashboard_pages(qe, failed_jobs(1)):
        response = admin_web.get(path)
        assert response.status_code in (200, 404), path
        policy = response["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'", policy
        assert "unsafe" not in policy and "ws://testserver" in directives["connect-src"]
        assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
        html = response.content.decode()
        for pattern, what in INLINE:
            found = pattern.search(html)
            assert found is None, f"{path}: {what}: {html[max(0, found.start() - 80):found.end() + 80]!r}"
        if response.status_code == 200:
            assert '"includeIndicatorStyles": false' in html, "htmx would inject its indicator <style>"


def test_the_api_has_the_policy_and_the_admin_keeps_its_own(admin_web: WebClient, settings: Any) -> None:
    """The policy is scoped to the dashboard's URLs; QUEUEENGINE["CSP"] replaces it or turns it off."""
    assert "default-src 'self'" in admin_web.get("/jobs/api/queues/")["Content-Security-Policy"]
    assert "Content-Security-Policy" not in admin_web.get("/admin/")
    settings.QUEUEENGINE = {**settings.QUEUEENGINE, "CSP": "default-src 'none'"}
    assert admin_web.get("/jobs/")["Content-Security-Policy"] == "default-src 'none'"
    settings.QUEUEENGINE = {**settings.QUEUEENGINE, "CSP": False}
    assert "Content-Security-Policy" not in admin_web.get("/jobs/")


def closed_url() -> str:
    return f"redis://:s3cret@127.0.0.1:{free_port()}/0"


def test_pages_answer_503_naming_the_redis_url_when_redis_is_unreachable(admin_web: WebClient,
                                                                          settings: Any) -> None:
    """Every page: 503, the Redis URL (password hidden), what to do, the badge; no traceback."""
    url = closed_url()
    settings.QUEUEENGINE = {**settings.QUEUEENGINE, "URL": url}
    shown = url.replace(":s3cret@", ":***@")
    for path in ("/jobs/", "/jobs/queue/work/?tab=waiting", "/jobs/failed/", "/jobs/workers/",
                 "/jobs/job/abc/", "/jobs/config/"):
        response = admin_web.get(path)
        html = response.content.decode()
        assert response.status_code == 503, (path, html[:300])
        assert shown in html and "s3cret" not in html and "REDIS_URL" in html, path
        assert "Traceback" not in html and 'data-live-state="redis-down"' in html, path
        assert response["Retry-After"] and "Content-Security-Policy" in response


def test_the_api_answers_503_json_when_redis_is_unreachable(admin_web: WebClient, settings: Any) -> None:
    """The JSON API and the metrics: 503 with a JSON body naming the URL."""
    url = closed_url()
    settings.QUEUEENGINE = {**settings.QUEUEENGINE, "URL": url}
    for path in ("/jobs/api/queues/", "/jobs/api/workers/", "/jobs/api/job/abc/", "/jobs/metrics"):
        response = admin_web.get(path)
        assert response.status_code == 503 and response["Content-Type"] == "application/json", path
        body = response.json()
        assert body["error"] == "redis unavailable" and body["redis_url"] == url.replace(":s3cret@", ":***@")


def test_a_redis_that_stops_turns_pages_into_503_and_back(admin_web: WebClient, settings: Any,
                                                          tmp_path: Path) -> None:
    """A test Redis serving the dashboard stops: 503; it starts again: the page is back."""
    server = EmbeddedRedis(tmp_path, appendonly=True)
    url = server.start()
    try:
        settings.QUEUEENGINE = {**settings.QUEUEENGINE, "URL": url}
        assert admin_web.get("/jobs/").status_code == 200
        server.stop()
        response = admin_web.get("/jobs/")
        assert response.status_code == 503 and url in response.content.decode()
        server.start()
        assert admin_web.get("/jobs/").status_code == 200
    finally:
        server.stop()


@pytest.mark.django_db(transaction=True)
async def test_the_live_badge_says_redis_is_unreachable(django_user_model: Any, settings: Any) -> None:
    """A tab whose server cannot reach Redis gets a "Redis unreachable" badge instead of fragments."""
    settings.QUEUEENGINE = {**settings.QUEUEENGINE, "URL": closed_url()}
    try:
        cookie = await sync_to_async(session_cookie)(django_user_model, is_staff=True)
        comm, connected, _ = await connect("/jobs/", cookie)
        assert connected
        message = await comm.receive_from(timeout=15)
        assert 'id="live-badge"' in message and 'data-live-state="redis-down"' in message
        assert "Redis unreachable" in message
        await comm.disconnect()
    finally:
        await live.shutdown()


def test_redacted_url_hides_only_the_password() -> None:
    """Shown URLs keep user, host, port and database."""
    assert redacted_url("redis://user:pw@h:1/2") == "redis://user:***@h:1/2"
    assert redacted_url("redis://:pw@h:1/2") == "redis://:***@h:1/2"
    assert redacted_url("redis://h:1/2") == "redis://h:1/2"


def test_system_checks_know_and_validate_the_hardening_keys(settings: Any) -> None:
    """CSP and ALLOWED_ORIGINS are known keys; a wrong value is an error naming the key."""
    from queueengine.checks import check_queueengine_settings

    base = {"URL": "redis://127.0.0.1:6379/0", "NAMESPACE": "test"}
    settings.QUEUEENGINE = {**base, "CSP": False, "ALLOWED_ORIGINS": ["https://ops.example.com", "http://h:81"]}
    assert check_queueengine_settings() == []
    settings.QUEUEENGINE = {**base, "CSP": 3, "ALLOWED_ORIGINS": ["ops.example.com/path"]}
    found = {m.id: m.msg for m in check_queueengine_settings()}
    assert "CSP" in found["queueengine.E030"] and "ALLOWED_ORIGINS" in found["queueengine.E031"]
