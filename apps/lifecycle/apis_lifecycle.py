"""/api/v1/members/erase (a data-subject erasure) and /api/v1/workspace/deletion (the owners ask
for their workspace to be deleted). Same services as the console and the commands."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import Permission
from apps.lifecycle.deletion import tenant_deletion_schedule
from apps.lifecycle.erasure import member_erase
from apps.tenants.models import Tenant
from apps.tokens.models import Scope
from foundry.api.access import TenantAPIView
from foundry.api.fields import StrictCharField, StrictInput
from foundry.errors import ServiceError


class MemberEraseApi(TenantAPIView):
    """Erase a person's personal data here: the member removed (if still one), their email and
    name replaced by a pseudonym in every table (docs/lifecycle.md). Owners are erased by owners."""

    access = {"POST": (Permission.MEMBERS_MANAGE, Scope.ADMIN)}

    class EraseInput(StrictInput):
        email = StrictCharField(max_length=254)

    @extend_schema(
        operation_id="members_erase",
        request=EraseInput,
        responses={
            200: inline_serializer(
                "MemberErased",
                {
                    "actor_id": serializers.CharField(),
                    "pseudonym": serializers.CharField(),
                    "member_removed": serializers.BooleanField(),
                    "rows": serializers.DictField(child=serializers.IntegerField()),
                    "sessions": serializers.IntegerField(),
                },
            ),
            409: OpenApiResponse(description="`legal_hold`: the workspace's audit trail is on legal hold."),
        },
    )
    def post(self, request: Request) -> Response:
        data = self.EraseInput(data=request.data)
        data.is_valid(raise_exception=True)
        erased = member_erase(actor=request.user, email=data.validated_data["email"], request=request._request)
        return Response(
            {
                "actor_id": erased.actor_id,
                "pseudonym": erased.pseudonym,
                "member_removed": erased.member_removed,
                "rows": erased.rows,
                "sessions": erased.sessions,
            }
        )


class WorkspaceDeletionApi(TenantAPIView):
    """The owners ask for this workspace's deletion: it is suspended at once (this API included)
    and purged after the platform's grace period, within which an operator can cancel it."""

    access = {"POST": (Permission.OWNERS_MANAGE, Scope.ADMIN)}

    class DeletionInput(StrictInput):
        confirm = StrictCharField(max_length=63, help_text="The workspace's slug, to confirm.")

    @extend_schema(
        operation_id="workspace_delete",
        request=DeletionInput,
        responses={
            202: inline_serializer(
                "WorkspaceDeletion", {"status": serializers.CharField(), "purge_after": serializers.DateTimeField()}
            ),
            409: OpenApiResponse(
                description="`legal_hold`: the workspace's audit trail is on legal hold; "
                "`deletion_scheduled`: its deletion is scheduled already."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = self.DeletionInput(data=request.data)
        data.is_valid(raise_exception=True)
        tenant = Tenant.objects.get(pk=request._request.tenant.pk)
        if data.validated_data["confirm"] != tenant.slug:
            raise ServiceError("confirm_mismatch", "Confirm with this workspace's slug.")
        tenant = tenant_deletion_schedule(tenant=tenant, actor=request.user, request=request._request)
        return Response({"status": tenant.status, "purge_after": tenant.purge_after}, status=202)
