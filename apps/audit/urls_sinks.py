"""Console pages for SIEM sinks (settings.manage), included on tenant hosts."""

from django.urls import path

from apps.audit import views_sinks

app_name = "audit_sinks"

urlpatterns = [
    path("settings/audit-sinks/", views_sinks.sink_list, name="sink_list"),
    path("settings/audit-sinks/<str:name>/", views_sinks.sink_edit, name="sink_edit"),
    path("settings/audit-sinks/<str:name>/delete/", views_sinks.sink_delete, name="sink_delete"),
]
