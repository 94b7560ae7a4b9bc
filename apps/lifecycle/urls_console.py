"""Console pages of a workspace's data lifecycle, on tenant hosts (foundry/urls_tenant.py)."""

from django.urls import path  # noqa: F401 — used as pages are added

app_name = "lifecycle"

urlpatterns: list = []
