from django.urls import path

from apps.tokens import views

app_name = "tokens"

urlpatterns = [
    path("settings/tokens/", views.token_list, name="token_list"),
    path("settings/tokens/new/", views.token_issue_view, name="token_issue"),
    path("settings/tokens/<int:token_id>/revoke/", views.token_revoke_view, name="token_revoke"),
]
