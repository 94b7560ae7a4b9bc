"""Operator console pages of the price list and the platform-wide usage, on the platform host only
(foundry/urls_public.py)."""

from django.urls import path

from apps.billing import views

app_name = "billing"

urlpatterns = [
    path("prices/", views.price_list_view, name="price_list"),
    path("prices/new/", views.price_set_view, name="price_set"),
    path("usage/", views.platform_usage_view, name="platform_usage"),
]
