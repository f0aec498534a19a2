"""Websocket routes of the dashboard (live updates; filled in by the live-dashboard work)."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
