"""Dashboard URLs, mounted by the project under /jobs/."""

from django.urls import path

from . import views

app_name = "jobadmin"

urlpatterns = [
    path("", views.overview, name="overview"),
]
