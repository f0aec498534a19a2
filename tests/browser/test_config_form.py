"""The config page's htmx form in a real browser: a refused value is reported inline, in place
(no page load), and changes nothing; a good one is saved with a notice."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser


def test_inline_validation_on_the_config_page(page: Any, dashboard_url: str, engine_b: Any) -> None:
    engine_b.config["myapp-colour"] = "blue"
    page.goto(dashboard_url + "/jobs/config/")
    assert page.locator("tr[data-option='myapp-colour'] .badge-unknown").inner_text() == "unknown"
    page.evaluate("window.__same_page = true")
    row = page.locator("tr[data-option='heartbeat']")
    row.locator("input[name=value]").fill("0")
    row.locator("button", has_text="Save").click()
    alert = page.locator("tr[data-option='heartbeat'] [role=alert]")
    alert.wait_for()
    assert "heartbeat must be a number > 0" in alert.inner_text()
    assert page.evaluate("window.__same_page === true"), "the table was swapped in place, no page load"
    assert page.locator("tr[data-option='heartbeat'] input[name=value]").input_value() == "0"
    assert engine_b.config["heartbeat"] == 60
    page.locator("tr[data-option='heartbeat'] input[name=value]").fill("90")
    page.locator("tr[data-option='heartbeat'] button", has_text="Save").click()
    page.locator("#config_table [role=status]", has_text="Set heartbeat = 90").wait_for()
    assert engine_b.config["heartbeat"] == 90
    assert page.locator("tr[data-option='heartbeat'] [role=alert]").count() == 0
    assert page.evaluate("window.__same_page === true")
