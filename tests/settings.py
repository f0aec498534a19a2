"""Test settings: the project's settings with an in-memory channel layer and database.

The engine's URL is set by ``tests/conftest.py`` once the session's Redis server is up.
"""

import os

os.environ.setdefault("CHANNEL_LAYER", "memory")
os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-tests-only-secret-key-0123456789")

from config.settings import *  # noqa: E402,F403

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
QUEUEENGINE = {"URL": "redis://127.0.0.1:1/0", "NAMESPACE": "test", "MODE": "reliable"}

TASKS = {
    "default": {
        "BACKEND": "queueengine.tasks.QueueEngineBackend",
        "QUEUES": ["default", "emails"],
        "OPTIONS": {"TAGS": ["django-task"]},
    }
}
