"""Websocket routes of the dashboard: ``<mount>/ws/live/`` (any mount point of jobadmin.urls)."""

from django.urls import URLPattern, re_path

from jobadmin.consumers import LiveConsumer

websocket_urlpatterns: list[URLPattern] = [
    re_path(r"^(?:.*/)?ws/live/$", LiveConsumer.as_asgi(), name="jobadmin_live"),
]
