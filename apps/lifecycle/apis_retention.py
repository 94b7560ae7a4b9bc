"""/api/v1/retention: the workspace's retention policy, and a preview of what it deletes.

Every member may read the policy (`dashboard.view`, scope `read`); changing it and previewing a
pass are `settings.manage` with the scope `admin`, like the workspace's other settings. Every
value is judged by `retention_policy_set` (codes `days_invalid`, `days_too_large`,
`legal_hold_invalid`, `field_unknown`).
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import Permission
from apps.lifecycle.models import RetentionPolicy
from apps.lifecycle.retention import (
    FIELDS,
    KINDS,
    MAX_DAYS,
    retention_apply,
    retention_policy_clean,
    retention_policy_get,
    retention_policy_set,
)
from apps.tokens.models import Scope
from foundry.api.access import TenantAPIView
from foundry.api.fields import StrictInput, no_body
from foundry.errors import ServiceError

_DAYS_HELP = f"Days, 1 to {MAX_DAYS}; null keeps for ever."


class RetentionPolicyOutput(serializers.ModelSerializer):
    class Meta:
        model = RetentionPolicy
        fields = [*FIELDS, "updated_at", "updated_by"]


class RetentionPolicyInput(StrictInput):
    """For the schema only: the service judges the body as sent (any subset of the settings)."""

    runs_days = serializers.IntegerField(required=False, allow_null=True, help_text=_DAYS_HELP)
    checkpoints_days = serializers.IntegerField(required=False, allow_null=True, help_text=_DAYS_HELP)
    usage_detail_days = serializers.IntegerField(required=False, allow_null=True, help_text=_DAYS_HELP)
    traces_days = serializers.IntegerField(required=False, allow_null=True, help_text=_DAYS_HELP)
    exports_days = serializers.IntegerField(required=False, allow_null=True, help_text=_DAYS_HELP)
    audit_legal_hold = serializers.BooleanField(required=False, help_text="Keep the audit trail whatever audit_days.")
    audit_days = serializers.IntegerField(required=False, allow_null=True, help_text=_DAYS_HELP)


class RetentionPreviewOutput(serializers.Serializer):
    counts = serializers.DictField(child=serializers.IntegerField(), help_text=f"By kind: {', '.join(KINDS)}.")
    policy = RetentionPolicyOutput()


class RetentionPolicyApi(TenantAPIView):
    access = {"GET": (Permission.DASHBOARD_VIEW, Scope.READ), "PUT": (Permission.SETTINGS_MANAGE, Scope.ADMIN)}

    @extend_schema(operation_id="retention_get", responses={200: RetentionPolicyOutput})
    def get(self, request: Request) -> Response:
        return Response(RetentionPolicyOutput(retention_policy_get()).data)

    @extend_schema(
        operation_id="retention_set",
        request=RetentionPolicyInput,
        responses={
            200: RetentionPolicyOutput,
            400: OpenApiResponse(
                description="`days_invalid`, `days_too_large`, `legal_hold_invalid`, `field_unknown` or `body_invalid`."
            ),
        },
        description="Change the settings given; the others stay. Audited (`retention.updated`).",
    )
    def put(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise ServiceError("body_invalid", "The body is a JSON object of retention settings.")
        values = retention_policy_clean(dict(request.data))  # first: a key named "actor" is refused, not taken
        policy = retention_policy_set(actor=request.user, request=request._request, **values)
        return Response(RetentionPolicyOutput(policy).data)


class RetentionPreviewApi(TenantAPIView):
    access = {"POST": (Permission.SETTINGS_MANAGE, Scope.ADMIN)}

    @extend_schema(
        operation_id="retention_preview",
        request=None,
        responses={200: RetentionPreviewOutput},
        description="Count what the policy would delete now, deleting nothing (a dry run, audited).",
    )
    def post(self, request: Request) -> Response:
        no_body(request)
        tenant = request._request.tenant
        counts = retention_apply(tenant=tenant, dry_run=True, actor=request.user, request=request._request)
        return Response(RetentionPreviewOutput({"counts": counts, "policy": retention_policy_get()}).data)
