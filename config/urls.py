"""URLs: the Django admin at /admin/, the job dashboard at /jobs/."""

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/jobs/", permanent=False)),
    path("favicon.ico", RedirectView.as_view(url=static("jobadmin/favicon.svg"), permanent=True)),
    path("admin/", admin.site.urls),
    path("jobs/", include("jobadmin.urls")),
]
