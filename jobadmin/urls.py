"""Dashboard URLs; a project mounts them with ``path("jobs/", include("jobadmin.urls"))``."""

from django.urls import path

from jobadmin.views import actions, api, pages

app_name = "jobadmin"

urlpatterns = [
    path("", pages.overview, name="overview"),
    path("find/", pages.find, name="find"),
    path("queue/<str:name>/", pages.queue, name="queue"),
    path("queue/<str:name>/<str:action>/", actions.queue_action, name="queue_action"),
    path("job/<str:jid>/", pages.job, name="job"),
    path("job/<str:jid>/<str:action>/", actions.job_action, name="job_action"),
    path("bulk/", actions.bulk_action, name="bulk"),
    path("failed/", pages.failures, name="failures"),
    path("failed/<str:group>/", pages.failure_group, name="failure_group"),
    path("failed/<str:group>/<str:action>-all/", actions.group_action, name="group_action"),
    path("operations/<str:op_id>/", pages.operation, name="operation"),
    path("workers/", pages.workers, name="workers"),
    path("workers/<str:name>/", pages.worker, name="worker"),
    path("tracked/", pages.tracked, name="tracked"),
    path("completed/", pages.completed, name="completed"),
    path("recurring/", pages.recurring, name="recurring"),
    path("tags/", pages.tags, name="tags"),
    path("search/", pages.search, name="search"),
    path("config/", pages.config, name="config"),
    path("config/set/", actions.config_action, name="config_action"),
    path("api/queues/", api.queues, name="api_queues"),
    path("api/queues/<str:name>/", api.queue, name="api_queue"),
    path("api/queues/<str:name>/stats/", api.stats, name="api_stats"),
    path("api/job/<str:jid>/", api.job, name="api_job"),
    path("api/failures/", api.failures, name="api_failures"),
    path("api/workers/", api.workers, name="api_workers"),
    path("metrics", api.metrics, name="metrics"),
]
