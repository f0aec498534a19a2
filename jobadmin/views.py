"""Dashboard pages."""

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from . import presenters


@never_cache
@staff_member_required
def overview(request: HttpRequest) -> HttpResponse:
    """The overview page (or, for an htmx request, its ``overview_queues`` fragment)."""
    client = presenters.engine_client()
    try:
        context = presenters.overview_queues(client)
    finally:
        client.close()
    if request.headers.get("HX-Request"):
        return render(request, "jobadmin/partials/overview_queues.html", context)
    return render(request, "jobadmin/overview.html", context)
