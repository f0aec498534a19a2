"""A logged-in staff client of the demo project's dashboard, for the page benchmarks
(bench/dashboard_pages.py, bench/search_scale.py): the whole Django stack, no server."""

from __future__ import annotations

import os
import tempfile
from typing import Any


def staff_web_client(url: str, namespace: str, data_prefix: str) -> Any:
    """``django.test.Client`` logged in as a staff superuser of ``config.settings``, with the engine
    on ``url`` / ``namespace``, an in-memory channel layer and DEBUG off; migrates its SQLite
    database (in a temporary folder named after ``data_prefix`` unless QE_DATA_DIR is set)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.update(REDIS_URL=url, QE_NAMESPACE=namespace, CHANNEL_LAYER="memory", DJANGO_DEBUG="0")
    os.environ.setdefault("QE_DATA_DIR", tempfile.mkdtemp(prefix=data_prefix))
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client as WebClient
    from django.test.utils import setup_test_environment

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True,
                                                                                 "is_superuser": True})
    web = WebClient()
    web.force_login(user)
    return web
