from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import Permission, Role
from apps.tokens.models import ApiToken, Scope
from apps.tokens.services import token_expiry_parse, token_issue, token_revoke
from foundry.api.access import TenantAPIView
from foundry.api.created import LOCATION, created
from foundry.api.fields import StrictCharField, StrictInput
from foundry.api.lists import ListSpec
from foundry.filtering import EnumField, FilterSpec, ListField, StringField, TimestampField
from foundry.filtering.ordering import OrderSpec


class TokenOutput(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "role",
            "scopes",
            "created_by",
            "issued_by",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "revoked_reason",
        ]


TOKENS = ListSpec(
    serializer=TokenOutput,
    resource="tokens",
    filters=FilterSpec(
        {
            "name": StringField(),
            "prefix": StringField(),
            "role": EnumField(choices=tuple(Role.values)),
            "scopes": ListField(item=EnumField(choices=tuple(Scope.values))),
            "created_at": TimestampField(),
            "expires_at": TimestampField(nullable=True),
            "last_used_at": TimestampField(nullable=True),
            "revoked_at": TimestampField(nullable=True),
        }
    ),
    ordering=OrderSpec(
        {"name": None, "created_at": None, "expires_at": None, "last_used_at": None, "id": None},
        default="created_at desc",
    ),
)


class TokenListApi(TenantAPIView):
    access = {"GET": (Permission.SETTINGS_MANAGE, Scope.ADMIN), "POST": (Permission.SETTINGS_MANAGE, Scope.ADMIN)}

    class TokenIssueInput(StrictInput):
        name = StrictCharField(max_length=100)
        role = serializers.ChoiceField(choices=Role.choices)
        scopes = serializers.ListField(child=serializers.ChoiceField(choices=Scope.choices), min_length=1, max_length=4)
        expires_in = StrictCharField(max_length=10, required=False, allow_blank=True, help_text='e.g. "30d"')

    @TOKENS.schema("tokens_list")
    def get(self, request: Request) -> Response:
        return TOKENS.respond(request, ApiToken.objects.all())

    @extend_schema(
        operation_id="tokens_issue",
        request=TokenIssueInput,
        parameters=[LOCATION],
        responses={
            201: inline_serializer("TokenIssued", {"token": serializers.CharField(), "metadata": TokenOutput()})
        },
    )
    def post(self, request: Request) -> Response:
        data = self.TokenIssueInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        issued = token_issue(
            actor=request.user,
            name=fields["name"],
            role=fields["role"],
            scopes=fields["scopes"],
            expires_in=token_expiry_parse(fields.get("expires_in")),
            credential=request.auth,
            request=request._request,
        )
        return created(
            {"token": issued.plaintext, "metadata": TokenOutput(issued.token).data}, f"tokens/{issued.token.pk}"
        )


class TokenDetailApi(TenantAPIView):
    access = {"GET": (Permission.SETTINGS_MANAGE, Scope.ADMIN), "DELETE": (Permission.SETTINGS_MANAGE, Scope.ADMIN)}

    @extend_schema(operation_id="tokens_get", responses=TokenOutput)
    def get(self, request: Request, token_id: int) -> Response:
        return Response(TokenOutput(get_object_or_404(ApiToken, pk=token_id)).data)

    @extend_schema(
        operation_id="tokens_revoke",
        responses={200: TokenOutput},
        description="Revoke the token; it stops working at once.",
    )
    def delete(self, request: Request, token_id: int) -> Response:
        token = token_revoke(
            actor=request.user, token=get_object_or_404(ApiToken, pk=token_id), request=request._request
        )
        return Response(TokenOutput(token).data)
