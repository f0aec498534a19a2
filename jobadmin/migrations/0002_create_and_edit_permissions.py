"""Permissions to create jobs and to edit waiting and scheduled jobs from the dashboard."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("jobadmin", "0001_initial")]

    operations = [
        migrations.AlterModelOptions(
            name="dashboard",
            options={
                "verbose_name": "dashboard",
                "verbose_name_plural": "dashboard",
                "managed": False,
                "default_permissions": (),
                "permissions": (
                    ("view_dashboard", "Can view the job dashboard"),
                    ("retry_jobs", "Can retry jobs"),
                    ("cancel_jobs", "Can cancel jobs"),
                    ("move_jobs", "Can move jobs between queues"),
                    ("pause_queues", "Can pause and unpause queues"),
                    ("edit_jobs", "Can edit jobs (priority, tags, tracking, dependencies, timeout, recurring)"),
                    ("edit_config", "Can edit the engine's configuration"),
                    ("create_jobs", "Can create jobs"),
                    ("edit_waiting_jobs", "Can edit waiting and scheduled jobs (data, priority, delay, tags)"),
                ),
            },
        ),
    ]
