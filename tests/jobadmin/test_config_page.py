"""The config page: known options with meaning, type and default; unknown ones marked; the htmx
form reports a refused value inline and changes nothing."""

from __future__ import annotations

import re
from typing import Any

import redis
from django.utils.html import escape

from jobadmin.models import AuditEntry
from queueengine import Client
from queueengine.store import options
from tests.jobadmin.conftest import snapshot

HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "config_table"}


def _row(html: str, option: str) -> str:
    match = re.search(rf'<tr data-option="{re.escape(option)}"[^>]*>(.*?)</tr>', html, re.S)
    assert match, f"no row for {option}"
    return match.group(0)


def test_known_options_show_meaning_type_range_and_default(admin_web: Any, qe: Client) -> None:
    html = admin_web.get("/jobs/config/").content.decode()
    for name, option in options.KNOWN.items():
        row = _row(html, name)
        assert "data-unknown" not in row and "unknown</span>" not in row
        assert escape(option.meaning) in row
        assert escape(f"{option.kind}, {option.range_text}") in row
    heartbeat = _row(html, "heartbeat")
    assert "number, &gt; 0 and &lt;= 315360000" in heartbeat and ">60<" in heartbeat
    for form in ("<queue>-heartbeat", "<queue>-max-concurrency", "<queue>-max-queue-length"):
        assert f'data-per-queue="{escape(form)}"' in html


def test_unknown_and_per_queue_options_are_told_apart(admin_web: Any, qe: Client) -> None:
    qe.config["myapp-colour"] = "blue"
    qe.config["reports-heartbeat"] = 30
    html = admin_web.get("/jobs/config/").content.decode()
    mine = _row(html, "myapp-colour")
    assert 'data-unknown="1"' in mine and "unknown</span>" in mine and "Free-form" in mine
    per_queue = _row(html, "reports-heartbeat")
    assert "data-unknown" not in per_queue and "Lease length" in per_queue and ">set<" in per_queue


def test_a_refused_value_is_reported_inline_and_changes_nothing(admin_web: Any, qe: Client,
                                                                 redis_conn: redis.Redis) -> None:
    qe.config["grace-period"] = 5
    before = snapshot(redis_conn)
    response = admin_web.post("/jobs/config/set/", {"option": "heartbeat", "value": "0"}, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.startswith('<section id="config_table">')          # the fragment, not a redirect
    row = _row(html, "heartbeat")
    assert 'aria-invalid="true"' in row and 'role="alert"' in row
    assert "heartbeat must be a number &gt; 0" in row
    assert 'value="0"' in row                                        # the input keeps what was typed
    assert "must be" not in _row(html, "grace-period")
    assert snapshot(redis_conn) == before and not AuditEntry.objects.exists()
    assert qe.config["heartbeat"] == 60


def test_a_bad_new_option_is_reported_at_the_new_option_form(admin_web: Any, qe: Client,
                                                              redis_conn: redis.Redis) -> None:
    before = snapshot(redis_conn)
    html = admin_web.post("/jobs/config/set/", {"option": "jobs-max-concurrency", "value": "-2"},
                          **HTMX).content.decode()
    assert 'id="config-error-new"' in html and "jobs-max-concurrency must be an integer &gt;= 0" in html
    assert 'value="jobs-max-concurrency"' in html and 'value="-2"' in html
    assert snapshot(redis_conn) == before


def test_a_good_value_is_saved_with_a_notice_and_audited(admin_web: Any, qe: Client) -> None:
    html = admin_web.post("/jobs/config/set/", {"option": "heartbeat", "value": "90"}, **HTMX).content.decode()
    assert 'role="status"' in html and "Set heartbeat = 90" in html and 'role="alert"' not in html
    assert ">set<" in _row(html, "heartbeat") and qe.config["heartbeat"] == 90
    html = admin_web.post("/jobs/config/set/", {"option": "heartbeat", "unset": "1"}, **HTMX).content.decode()
    assert ">default<" in _row(html, "heartbeat") and qe.config["heartbeat"] == 60
    assert AuditEntry.objects.filter(action="config", target="heartbeat").count() == 2


def test_without_htmx_the_error_is_a_message_after_the_redirect(admin_web: Any, qe: Client) -> None:
    response = admin_web.post("/jobs/config/set/", {"option": "grace-period", "value": "-1"}, follow=True)
    assert "grace-period must be a number &gt;= 0" in response.content.decode()
    assert qe.config["grace-period"] == 10


def test_the_inline_form_needs_the_permission(user_with: Any, qe: Client, redis_conn: redis.Redis) -> None:
    viewer = user_with()
    before = snapshot(redis_conn)
    response = viewer.post("/jobs/config/set/", {"option": "heartbeat", "value": "90"}, **HTMX)
    assert response.status_code == 403
    assert snapshot(redis_conn) == before
    assert 'hx-post="/jobs/config/set/"' not in viewer.get("/jobs/config/").content.decode()
