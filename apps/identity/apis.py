"""/api/v1/sso: the workspace's single sign-on configuration (read: settings.manage; change:
owners.manage). The secret is write-only."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import Permission
from apps.identity.models import DEFAULT_SCOPES, SsoConfiguration
from apps.identity.services import sso_configure, sso_disable
from apps.tokens.models import Scope
from foundry.api.access import TenantAPIView
from foundry.api.fields import StrictBooleanField, StrictCharField, StrictInput
from foundry.errors import ServiceError

_MANAGE = (Permission.SETTINGS_MANAGE, Scope.ADMIN)
_OWNERS = (Permission.OWNERS_MANAGE, Scope.ADMIN)


class SsoOutput(serializers.ModelSerializer):
    client_secret_set = serializers.BooleanField(help_text="Whether a client secret is stored (it is never shown).")
    allowed_domains = serializers.ListField(child=serializers.CharField(), help_text="Empty: any email domain.")
    role_map = serializers.DictField(child=serializers.CharField(), help_text="Claim value → Foundry role.")
    signing_algs = serializers.ListField(
        child=serializers.CharField(), help_text="Asymmetric ID token algorithms the provider offers."
    )

    class Meta:
        model = SsoConfiguration
        fields = [
            "issuer",
            "client_id",
            "client_secret_set",
            "scopes",
            "allowed_domains",
            "roles_claim",
            "role_map",
            "audience",
            "jit_enabled",
            "sso_required",
            "break_glass_email",
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "userinfo_endpoint",
            "end_session_endpoint",
            "signing_algs",
            "discovered_at",
            "created_by",
            "created_at",
            "updated_by",
            "updated_at",
        ]


class SsoInput(StrictInput):
    issuer = StrictCharField(max_length=500, help_text="Exactly as the provider's discovery document names it.")
    client_id = StrictCharField(max_length=255)
    client_secret = StrictCharField(
        max_length=1000,
        required=False,
        write_only=True,
        help_text="Required the first time and when the issuer or client id changes; leave it out to keep it.",
    )
    scopes = StrictCharField(max_length=500, required=False, default=DEFAULT_SCOPES)
    allowed_domains = serializers.ListField(
        child=StrictCharField(max_length=253), required=False, default=list, max_length=50
    )
    roles_claim = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
    role_map = serializers.DictField(child=StrictCharField(max_length=20), required=False, default=dict)
    audience = StrictCharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        help_text="The `aud` of access tokens accepted on the API and MCP; empty: the client id.",
    )
    jit_enabled = StrictBooleanField(required=False, default=True)
    sso_required = StrictBooleanField(required=False, default=False)
    break_glass_email = StrictCharField(max_length=254, required=False, allow_blank=True, default="")


_NOT_CONFIGURED = OpenApiResponse(description="`sso_not_configured`")


def _config() -> SsoConfiguration:
    config = SsoConfiguration.objects.filter(pk=1).first()
    if config is None:
        raise ServiceError("sso_not_configured", "Single sign-on is not configured.", status=404)
    return config


class SsoApi(TenantAPIView):
    # Reading it is settings.manage; changing it is for owners (services._check_actor says why).
    access = {"GET": _MANAGE, "PUT": _OWNERS, "DELETE": _OWNERS}

    @extend_schema(operation_id="sso_get", responses={200: SsoOutput, 404: _NOT_CONFIGURED})
    def get(self, request: Request) -> Response:
        return Response(SsoOutput(_config()).data)

    @extend_schema(
        operation_id="sso_set",
        request=SsoInput,
        responses={
            200: SsoOutput,
            400: OpenApiResponse(description="Invalid input, or the issuer's discovery document was refused."),
            503: OpenApiResponse(description="`encryption_not_configured`: the platform has no encryption key."),
        },
        description="Create or replace the configuration; the issuer's discovery document is fetched and checked.",
    )
    def put(self, request: Request) -> Response:
        data = SsoInput(data=request.data)
        data.is_valid(raise_exception=True)
        config = sso_configure(actor=request.user, request=request._request, **data.validated_data)
        return Response(SsoOutput(config).data)

    @extend_schema(
        operation_id="sso_delete",
        responses={
            204: None,
            404: _NOT_CONFIGURED,
            409: OpenApiResponse(description="`owner_password_required`: no owner could sign in without it."),
        },
    )
    def delete(self, request: Request) -> Response:
        sso_disable(actor=request.user, request=request._request)
        return Response(status=204)
