"""Settings of the demo project that hosts ``queueengine`` and ``jobadmin``.

Environment variables: ``REDIS_URL`` (the engine's and the channel layer's Redis),
``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG`` (1/0, default 0), ``DJANGO_ALLOWED_HOSTS`` (comma-separated),
``DJANGO_SERVE_STATIC`` (1/0, default 1: the ASGI app serves /static/ itself, DEBUG or not),
``QE_NAMESPACE``, ``QE_MODE``, ``CHANNEL_LAYER`` (``redis`` or ``memory``), ``CHANNELS_REDIS_URL``
(the channel layer's Redis when it is not ``REDIS_URL``), and the dashboard's switches
``QE_READ_ONLY`` (1/0), ``QE_METRICS_TOKEN`` (at least 16 characters) and
``QE_REQUIRE_VIEW_PERMISSION`` (1/0).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("QE_DATA_DIR", BASE_DIR / ".data"))


def _secret_key() -> str:
    """The key from the environment, else one generated once and kept under .data/."""
    if os.environ.get("DJANGO_SECRET_KEY"):
        return os.environ["DJANGO_SECRET_KEY"]
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"
SERVE_STATIC = os.environ.get("DJANGO_SERVE_STATIC", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "channels",
    "queueengine",
    "jobadmin",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "jobadmin.middleware.ContentSecurityPolicyMiddleware",
    "jobadmin.middleware.RedisUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "db.sqlite3",
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "/admin/login/"
LOGIN_REDIRECT_URL = "/jobs/"

# The engine: which Redis, which namespace, which delivery mode (see README "Configuration").
QUEUEENGINE: dict[str, object] = {
    "URL": REDIS_URL,
    "NAMESPACE": os.environ.get("QE_NAMESPACE", "default"),
    "MODE": os.environ.get("QE_MODE", "reliable"),
}
# The dashboard's switches, from the environment (unset: the defaults).
if os.environ.get("QE_READ_ONLY"):
    QUEUEENGINE["READ_ONLY"] = os.environ["QE_READ_ONLY"] == "1"
if os.environ.get("QE_METRICS_TOKEN"):
    QUEUEENGINE["METRICS_TOKEN"] = os.environ["QE_METRICS_TOKEN"]
if os.environ.get("QE_REQUIRE_VIEW_PERMISSION"):
    QUEUEENGINE["REQUIRE_VIEW_PERMISSION"] = os.environ["QE_REQUIRE_VIEW_PERMISSION"] == "1"

# Live updates: channels_redis in production and `make run`, in-memory when asked (tests).
# channels_redis speaks plain Redis and Sentinel, not Cluster: with a cluster REDIS_URL set
# CHANNELS_REDIS_URL to a plain Redis for the layer (one daphne process may use CHANNEL_LAYER=memory).
def _channel_hosts(url: str) -> list[object]:
    from queueengine.store.connection import parse_url

    target = parse_url(url)
    if target.kind == "sentinel":
        return [{"sentinels": list(target.nodes), "master_name": target.service, "db": target.db}]
    return [url]


_CLUSTER_ONLY = REDIS_URL.startswith(("redis+cluster://", "rediss+cluster://")) and not os.environ.get(
    "CHANNELS_REDIS_URL")
if os.environ.get("CHANNEL_LAYER", "redis") == "memory" or _CLUSTER_ONLY:
    CHANNEL_LAYERS: dict[str, dict[str, object]] = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": _channel_hosts(os.environ.get("CHANNELS_REDIS_URL") or REDIS_URL),
                       "prefix": "qe-channels"},
        }
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"django.channels.server": {"level": "WARNING"},
                # task lines once: Django's own console handler shows them only when DEBUG is on
                "django.tasks": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
