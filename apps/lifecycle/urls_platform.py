"""Operator console pages of the data lifecycle (import, export, deletion), on the platform host only
(foundry/urls_public.py)."""

from django.urls import path

from apps.lifecycle import views_deletion, views_operator_export, views_platform

app_name = "lifecycle"

urlpatterns: list = [
    path("tenants/import/", views_platform.tenant_import_view, name="tenant_import"),
    path("tenants/<slug:slug>/delete/", views_deletion.tenant_deletion_schedule_view, name="tenant_delete"),
    path("tenants/<slug:slug>/delete/cancel/", views_deletion.tenant_deletion_cancel_view, name="tenant_delete_cancel"),
    path("tenants/<slug:slug>/purge/", views_deletion.tenant_purge_view, name="tenant_purge"),
    path("tenants/<slug:slug>/exports/", views_operator_export.tenant_exports_view, name="tenant_exports"),
    path(
        "tenants/<slug:slug>/exports/<str:export_id>/download/",
        views_operator_export.tenant_export_download,
        name="tenant_export_download",
    ),
]
