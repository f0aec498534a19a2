"""Overview page: access, counts from the engine, escaping, htmx fragment."""

from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def test_anonymous_is_redirected_to_login(client: Any) -> None:
    """Anonymous users never see the dashboard."""
    response = client.get("/jobs/")
    assert response.status_code == 302


def test_overview_shows_queue_counts_escaped(admin_client: Any, settings: Any, redis_url: str) -> None:
    """Queue names from Redis are escaped; the htmx request gets only the fragment."""
    from queueengine import Client

    engine = Client.from_url(redis_url, namespace=settings.QUEUEENGINE.get("NAMESPACE", "default"))
    engine.queues["<script>x</script>"].put("app.jobs.X", {})
    engine.close()
    page = admin_client.get("/jobs/").content.decode()
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x</script>" not in page
    fragment = admin_client.get("/jobs/", HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<section id="overview_queues">')


def test_non_staff_user_is_refused(client: Any, django_user_model: Any) -> None:
    """A signed-in user who is not staff is sent to the login page, not shown the dashboard."""
    user = django_user_model.objects.create_user(username="plain", password="pw")
    client.force_login(user)
    response = client.get("/jobs/")
    assert response.status_code == 302
