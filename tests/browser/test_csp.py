"""The Content-Security-Policy in a real Chromium: every dashboard page loads, runs its scripts,
opens its live socket and takes a pushed fragment without a single CSP violation."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser

RECORD = """window.__csp = [];
document.addEventListener('securitypolicyviolation', e => {
  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + (e.sourceFile || '') + ':' + e.lineNumber);
});"""
"""Runs before the page's own scripts: every violation the page reports lands in window.__csp."""


def open_and_check(page: Any, url: str, console: list[str]) -> None:
    """Load ``url``; its policy is the dashboard's and nothing on it was refused."""
    console.clear()
    response = page.goto(url)
    assert response is not None and response.status == 200, (url, response and response.status)
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy, (url, policy)
    page.wait_for_load_state("load")
    # the scripts ran (htmx, the ws extension, dashboard.js) and the socket is allowed
    page.wait_for_function("() => window.htmx && htmx.config.includeIndicatorStyles === false")
    page.wait_for_selector("#live-badge:not([data-live-state=connecting])")
    if page.get_attribute("#live-badge", "data-live-state") != "static":
        page.wait_for_selector("#live-badge[data-live-state=live]")
    assert page.evaluate("window.__csp") == [], (url, page.evaluate("window.__csp"))
    refused = [line for line in console if "Content Security Policy" in line or "Refused to" in line]
    assert refused == [], (url, refused)


def test_every_dashboard_page_loads_without_csp_violations(page: Any, dashboard_url: str, engine_b: Any) -> None:
    """Overview, queue tabs, job pages, failures, workers, the other lists, config: no violation
    reported by the page (securitypolicyviolation) or the console. (A 404 is checked with DEBUG
    off in tests/jobadmin/test_hardening.py; this server runs with DEBUG on, whose technical
    error pages are Django's and keep their inline styles, outside the policy.)"""
    q = engine_b.queues["csp"]
    jid = q.put("app.jobs.Csp", {"html": "<b>x</b>"})
    failed = q.put("app.jobs.Csp", {"n": 2}, retries=0)
    popped = q.pop(2)
    for job in popped:
        if job.jid == failed:
            job.fail("csp-ValueError", "broken <i>on purpose</i>")
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.add_init_script(RECORD)
    paths = ["/jobs/", "/jobs/queue/csp/", "/jobs/queue/csp/?tab=running", "/jobs/queue/csp/?tab=waiting",
             f"/jobs/job/{jid}/", f"/jobs/job/{failed}/", "/jobs/failed/", "/jobs/failed/csp-ValueError/",
             "/jobs/workers/", "/jobs/tracked/", "/jobs/completed/", "/jobs/recurring/", "/jobs/tags/",
             "/jobs/search/", "/jobs/config/", "/jobs/charts/", "/jobs/charts/?window=30d&queue=csp"]
    for path in paths:
        open_and_check(page, dashboard_url + path, console)


def test_a_pushed_fragment_swaps_in_without_violations(page: Any, dashboard_url: str, engine_b: Any) -> None:
    """An out-of-band swap over the socket (the overview gains a queue) breaks no directive."""
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.add_init_script(RECORD)
    open_and_check(page, dashboard_url + "/jobs/", console)
    engine_b.queues["csp-pushed"].put("app.jobs.Csp", {})
    page.wait_for_selector("tr[data-queue=csp-pushed]")
    assert page.evaluate("window.__csp") == []
    assert [line for line in console if "Content Security Policy" in line or "Refused to" in line] == []


def test_the_admin_still_works_outside_the_policy(page: Any, dashboard_url: str) -> None:
    """The policy is the dashboard's: Django's admin pages load and carry none of it."""
    response = page.goto(dashboard_url + "/admin/")
    assert response is not None and response.status == 200
    assert "content-security-policy" not in response.headers
    assert page.locator("#site-name").count() == 1
