from django.urls import path

from apps.tenants import views

app_name = "operator"

urlpatterns = [
    path("", views.tenant_list_view, name="tenant_list"),
    path("health/", views.health_view, name="health"),
    path("tenants/new/", views.tenant_create_view, name="tenant_create"),
    path("tenants/<slug:slug>/suspend/", views.tenant_suspend_view, name="tenant_suspend"),
    path("tenants/<slug:slug>/resume/", views.tenant_resume_view, name="tenant_resume"),
    path("tenants/<slug:slug>/limits/", views.tenant_limits_view, name="tenant_limits"),
    path("plans/", views.plan_list_view, name="plan_list"),
]
