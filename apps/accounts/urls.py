from django.urls import path

from apps.accounts import views

app_name = "accounts"

# Sign-in pages, served on tenant hosts and on the operator host (foundry/urls_public.py).
auth_urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.logout_view, name="logout"),
]

urlpatterns = [
    *auth_urlpatterns,
    path("invite/<uidb64>/<token>/", views.InviteAcceptView.as_view(), name="invite_accept"),
    path("members/", views.member_list, name="member_list"),
    path("members/add/", views.member_add_view, name="member_add"),
    path("members/<int:member_id>/role/", views.member_role_view, name="member_role"),
    path("members/<int:member_id>/remove/", views.member_remove_view, name="member_remove"),
    path("members/<int:member_id>/invite/", views.member_invite_view, name="member_invite"),
]
