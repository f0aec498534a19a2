"""Dashboard URLs; a project mounts them with ``path("jobs/", include("jobadmin.urls"))``.

Every name in a path (queue, jid, failure group, worker, operation) is one segment written by
:class:`NameConverter`: any legal name (``emails/daily``, ``café``, ``has space``, ``a%b``,
``what?#``) and anything found in Redis round-trips through ``{% url %}`` / ``reverse()`` and
back into the view's argument; views never take names apart from a raw path.
"""

import re

from django.urls import path, register_converter

from jobadmin.views import actions, api, charts, editing, explorer, matching, pages


class NameConverter:
    """A name as one path segment: ``~`` and ``/`` become ``~7E`` and ``~2F`` (a web server
    decodes ``%2F`` into a real slash before Django sees the path), a leading ``.`` becomes
    ``~2E`` (browsers collapse ``.`` and ``..`` segments) and the empty name is ``~``; Django
    percent-encodes everything else (``%``, ``?``, ``#``, spaces, non-ASCII)."""

    regex = "[^/]+"
    _escape = re.compile(r"[~/]|^\.")
    _unescape = re.compile(r"~([0-9A-F]{2})")

    def to_python(self, value: str) -> str:
        """The name in a matched segment."""
        if value == "~":
            return ""
        return self._unescape.sub(lambda m: chr(int(m.group(1), 16)), value)

    def to_url(self, value: str) -> str:
        """The segment of a name."""
        text = str(value)
        if not text:
            return "~"
        return self._escape.sub(lambda m: f"~{ord(m.group()):02X}", text)


register_converter(NameConverter, "qename")

app_name = "jobadmin"

urlpatterns = [
    path("", pages.overview, name="overview"),
    path("find/", pages.find, name="find"),
    path("queue/<qename:name>/", pages.queue, name="queue"),
    path("queue/<qename:name>/<str:action>/", actions.queue_action, name="queue_action"),
    path("job/<qename:jid>/", pages.job, name="job"),
    path("job/<qename:jid>/edit/", editing.edit_job, name="job_edit"),
    path("new/", editing.create_job, name="job_create"),
    path("job/<qename:jid>/<str:action>/", actions.job_action, name="job_action"),
    path("bulk/", actions.bulk_action, name="bulk"),
    path("failed/", pages.failures, name="failures"),
    path("failed/<qename:group>/", pages.failure_group, name="failure_group"),
    path("failed/<qename:group>/<str:action>-all/", actions.group_action, name="group_action"),
    path("operations/<qename:op_id>/", pages.operation, name="operation"),
    path("operations/<qename:op_id>/stop/", actions.stop_operation, name="operation_stop"),
    path("workers/", pages.workers, name="workers"),
    path("workers/<qename:name>/", pages.worker, name="worker"),
    path("tracked/", pages.tracked, name="tracked"),
    path("completed/", pages.completed, name="completed"),
    path("recurring/", pages.recurring, name="recurring"),
    path("tags/", pages.tags, name="tags"),
    path("search/", explorer.explorer, name="search"),
    path("search/suggest/", explorer.suggest, name="search_suggest"),
    path("search/act/", matching.review, name="search_act"),
    path("search/act/start/", matching.start, name="search_act_start"),
    path("charts/", charts.charts, name="charts"),
    path("config/", pages.config, name="config"),
    path("config/set/", actions.config_action, name="config_action"),
    path("api/queues/", api.queues, name="api_queues"),
    path("api/queues/<qename:name>/", api.queue, name="api_queue"),
    path("api/queues/<qename:name>/stats/", api.stats, name="api_stats"),
    path("api/job/<qename:jid>/", api.job, name="api_job"),
    path("api/failures/", api.failures, name="api_failures"),
    path("api/workers/", api.workers, name="api_workers"),
    path("metrics", api.metrics, name="metrics"),
]
