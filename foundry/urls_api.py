"""/api/ on tenant hosts: v1 resources, the OpenAPI schema and its interactive docs (offline)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.accounts.apis import MemberDetailApi, MemberInviteApi, MemberListApi, WorkspaceApi
from apps.tokens.apis import TokenDetailApi, TokenListApi

v1 = [
    path("workspace", WorkspaceApi.as_view(), name="workspace"),
    path("members", MemberListApi.as_view(), name="member_list"),
    path("members/<int:member_id>", MemberDetailApi.as_view(), name="member_detail"),
    path("members/<int:member_id>/invite", MemberInviteApi.as_view(), name="member_invite"),
    path("tokens", TokenListApi.as_view(), name="token_list"),
    path("tokens/<int:token_id>", TokenDetailApi.as_view(), name="token_detail"),
]

urlpatterns = [
    path("v1/", include((v1, "api"))),
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
]
