"""Audit console pages: `urlpatterns` on tenant hosts (the workspace's chain), and
`platform_urlpatterns` on the operator host (the platform's chain), under the same names."""

from django.urls import path

from apps.audit import views

app_name = "audit"

urlpatterns = [
    path("audit/", views.event_list, name="event_list"),
    path("audit/status/", views.chain_status_badge, name="chain_status"),
    path("audit/events/<int:seq>/", views.event_detail, name="event_detail"),
]

platform_urlpatterns = [
    path("audit/", views.platform_event_list, name="event_list"),
    path("audit/status/", views.platform_chain_status_badge, name="chain_status"),
    path("audit/events/<int:seq>/", views.platform_event_detail, name="event_detail"),
]
