"""Console pages of a workspace's data lifecycle, on tenant hosts (foundry/urls_tenant.py)."""

from django.urls import path

from apps.lifecycle import views_export, views_retention

app_name = "lifecycle"

urlpatterns: list = [
    path("settings/data-export/", views_export.export_list_view, name="export_list"),
    path("settings/data-export/rows/", views_export.export_rows, name="export_rows"),
    # The id is matched as text and parsed by the view: a malformed one is a 404, like an unknown one.
    path("settings/data-export/<str:export_id>/download/", views_export.export_download, name="export_download"),
    path("settings/retention/", views_retention.retention_view, name="retention"),
    path("settings/retention/preview/", views_retention.retention_preview, name="retention_preview"),
]
