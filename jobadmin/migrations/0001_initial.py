"""The audit log table and the dashboard's permissions."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [migrations.swappable_dependency(settings.AUTH_USER_MODEL)]

    operations = [
        migrations.CreateModel(
            name="Dashboard",
            fields=[("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                               verbose_name="ID"))],
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
                ),
            },
        ),
        migrations.CreateModel(
            name="AuditEntry",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("when", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("username", models.CharField(blank=True, max_length=150)),
                ("action", models.CharField(db_index=True, max_length=40)),
                ("namespace", models.CharField(blank=True, max_length=200)),
                ("target", models.CharField(blank=True, help_text="queue, failure group, option, ...",
                                            max_length=600)),
                ("jids", models.JSONField(blank=True, default=list, help_text="the first 1,000 jids acted on")),
                ("count", models.PositiveIntegerField(default=0)),
                ("detail", models.TextField(blank=True)),
                ("remote_addr", models.GenericIPAddressField(blank=True, null=True)),
                ("user", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                           related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={"verbose_name": "audit entry", "verbose_name_plural": "audit log",
                     "ordering": ("-when", "-id")},
        ),
    ]
