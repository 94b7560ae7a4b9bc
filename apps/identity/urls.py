from django.urls import path

from apps.identity import views
from apps.identity.oidc import SsoCallbackView, SsoLoginView

app_name = "identity"

urlpatterns = [
    path("sso/login/", SsoLoginView.as_view(), name="sso_login"),
    path("sso/callback/", SsoCallbackView.as_view(), name="sso_callback"),
    path("settings/sso/", views.sso_settings, name="sso_settings"),
    path("settings/sso/disable/", views.sso_disable_confirm, name="sso_disable"),
]
