"""Django app config of the dashboard."""

from django.apps import AppConfig


class JobAdminConfig(AppConfig):
    """The dashboard app: pages under /jobs/, admin integration, live updates."""

    name = "jobadmin"
    verbose_name = "Jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the system checks of the dashboard's prerequisites."""
        from . import checks  # noqa: F401
