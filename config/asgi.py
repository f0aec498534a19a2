"""ASGI entry point: HTTP goes to Django, websockets to the dashboard's live routes."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402

if settings.DEBUG or getattr(settings, "SERVE_STATIC", False):
    # Serve static files from the ASGI app (daphne serves none), so daphne alone is enough;
    # DJANGO_SERVE_STATIC=0 leaves /static/ to a front server (collectstatic into STATIC_ROOT).
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    django_asgi_app = ASGIStaticFilesHandler(django_asgi_app)

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from jobadmin.live import LiveApplication  # noqa: E402
from jobadmin.routing import SameOriginValidator, websocket_urlpatterns  # noqa: E402

# LiveApplication starts the dashboard's live bridge with the app and stops it cleanly.
application = LiveApplication(ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
))
