"""Django app config of the engine. Does no Redis I/O at import or in ``ready()``."""

from django.apps import AppConfig


class QueueEngineConfig(AppConfig):
    """The engine as a Django app: management commands, settings, checks."""

    name = "queueengine"
    verbose_name = "Queue engine"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the system checks (they read settings only), the task framework's too, so
        the ``TASKS`` backends are checked on Django 6 even when nothing imported ``django.tasks``."""
        from . import checks

        checks.register_framework_checks()
