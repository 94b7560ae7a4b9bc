from django.urls import path

from apps.identity import views

app_name = "identity"

urlpatterns = [
    path("settings/sso/", views.sso_settings, name="sso_settings"),
    path("settings/sso/disable/", views.sso_disable_confirm, name="sso_disable"),
]
