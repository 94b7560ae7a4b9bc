"""Operator console pages of the data lifecycle (import, deletion), on the platform host only
(foundry/urls_public.py)."""

from django.urls import path  # noqa: F401 — used as pages are added

app_name = "lifecycle"

urlpatterns: list = []
