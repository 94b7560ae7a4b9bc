"""/api/v1/providers: a workspace's model provider credentials (settings.manage). Keys are write-only."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import Permission
from apps.providers.models import ProviderCredential, ProviderName
from apps.providers.services import credential_delete, credential_get, credential_set
from apps.tokens.models import Scope
from foundry.api.access import TenantAPIView
from foundry.api.fields import StrictCharField, StrictInput
from foundry.api.lists import ListSpec
from foundry.filtering import EnumField, FilterSpec, StringField, TimestampField
from foundry.filtering.ordering import OrderSpec

_MANAGE = (Permission.SETTINGS_MANAGE, Scope.ADMIN)


class CredentialOutput(serializers.ModelSerializer):
    api_key_masked = serializers.CharField(help_text="The key's last four characters (none for short keys).")

    class Meta:
        model = ProviderCredential
        fields = [
            "provider",
            "base_url",
            "api_key_masked",
            "organization",
            "api_version",
            "deployment",
            "created_by",
            "created_at",
            "updated_by",
            "updated_at",
        ]


class CredentialInput(StrictInput):
    api_key = StrictCharField(
        max_length=1000,
        required=False,
        write_only=True,
        help_text="Required the first time; leave it out to keep the stored key.",
    )
    base_url = StrictCharField(
        max_length=500, required=False, allow_blank=True, default="", help_text="Empty: the provider's own endpoint."
    )
    organization = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
    api_version = StrictCharField(
        max_length=50, required=False, allow_blank=True, default="", help_text="Azure OpenAI only."
    )
    deployment = StrictCharField(
        max_length=200, required=False, allow_blank=True, default="", help_text="Azure OpenAI only."
    )


CREDENTIALS = ListSpec(
    serializer=CredentialOutput,
    resource="providers",
    filters=FilterSpec(
        {
            "provider": EnumField(choices=tuple(ProviderName.values)),
            "base_url": StringField(),
            "created_at": TimestampField(),
            "updated_at": TimestampField(),
        }
    ),
    ordering=OrderSpec({"provider": None, "created_at": None, "updated_at": None}, default="provider"),
)
_UNKNOWN = OpenApiResponse(description="`provider_unknown`, or `provider_not_configured` (nothing stored).")
_UNAVAILABLE = OpenApiResponse(description="`encryption_not_configured`: the platform has no encryption key.")


class CredentialListApi(TenantAPIView):
    access = {"GET": _MANAGE}

    @CREDENTIALS.schema("providers_list")
    def get(self, request: Request) -> Response:
        return CREDENTIALS.respond(request, ProviderCredential.objects.all())


class CredentialDetailApi(TenantAPIView):
    access = {"GET": _MANAGE, "PUT": _MANAGE, "DELETE": _MANAGE}

    @extend_schema(operation_id="providers_get", responses={200: CredentialOutput, 404: _UNKNOWN})
    def get(self, request: Request, provider: str) -> Response:
        return Response(CredentialOutput(credential_get(provider)).data)

    @extend_schema(
        operation_id="providers_set",
        request=CredentialInput,
        responses={
            200: CredentialOutput,
            201: CredentialOutput,
            404: _UNKNOWN,
            503: _UNAVAILABLE,
        },
        description="Create (201) or replace (200) the credentials of `openai` or `anthropic`. The key is never "
        "returned.",
    )
    def put(self, request: Request, provider: str) -> Response:
        data = CredentialInput(data=request.data)
        data.is_valid(raise_exception=True)
        credential = credential_set(
            actor=request.user, provider=provider, request=request._request, **data.validated_data
        )
        return Response(CredentialOutput(credential).data, status=201 if credential.just_created else 200)

    @extend_schema(operation_id="providers_delete", responses={204: None, 404: _UNKNOWN})
    def delete(self, request: Request, provider: str) -> Response:
        credential_delete(actor=request.user, provider=provider, request=request._request)
        return Response(status=204)
