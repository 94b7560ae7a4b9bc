"""Console pages of a workspace's usage, on tenant hosts (foundry/urls_tenant.py)."""

from django.urls import path

from apps.billing import views_console

app_name = "billing"

urlpatterns = [
    path("usage/", views_console.usage_view, name="usage"),
    path("usage/statement/", views_console.usage_statement_view, name="usage_statement"),
    path("usage/budgets/", views_console.budget_set_view, name="budget_set"),
]
