"""/api/v1/budgets: the workspace's monthly budgets, and this month's use of every cap.

Reading is `usage.view` with the scope `read`; setting is `settings.manage` with the scope
`admin`, like the workspace's other settings. Every value is judged by `budget_set`.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import Permission
from apps.billing.models import Budget
from apps.billing.quotas import month_of
from apps.billing.selectors import budget_list, quota_uses
from apps.billing.services import BUDGETS_ACCESS, budget_set
from apps.tokens.models import Scope
from foundry.api.access import TenantAPIView
from foundry.api.fields import StrictCharField, StrictInput, StrictIntegerField


class BudgetOutput(serializers.ModelSerializer):
    class Meta:
        model = Budget
        fields = ["project", "monthly_tokens", "monthly_cost_usd", "on_exhausted", "updated_by", "updated_at"]


class CapOutput(serializers.Serializer):
    project = serializers.CharField(source="cap.project", help_text='"" is the whole workspace.')
    measure = serializers.ChoiceField(source="cap.measure", choices=["tokens", "cost"])
    source = serializers.ChoiceField(source="cap.source", choices=["plan", "budget"])
    approvable = serializers.BooleanField(source="cap.approvable")
    limit = serializers.DecimalField(source="cap.limit", max_digits=20, decimal_places=2)
    used = serializers.DecimalField(max_digits=24, decimal_places=8, help_text="This month's usage (UTC).")
    percent = serializers.FloatField()


class BudgetsOutput(serializers.Serializer):
    budgets = BudgetOutput(many=True)
    caps = CapOutput(many=True)


class BudgetInput(StrictInput):
    project = StrictCharField(allow_blank=True, help_text='A project\'s name, or "" for the whole workspace.')
    monthly_tokens = StrictIntegerField(required=False, allow_null=True)
    monthly_cost_usd = StrictCharField(required=False, allow_null=True, help_text="USD, a decimal string.")
    on_exhausted = StrictCharField(required=False, default="stop", help_text="`stop` or `approve`.")


def _budgets(tenant_id: int) -> dict:
    budgets = budget_list(tenant_id=tenant_id)
    caps = quota_uses(tenant_id=tenant_id, budgets=budgets, month=month_of())
    return BudgetsOutput({"budgets": budgets, "caps": caps}).data


class BudgetListApi(TenantAPIView):
    access = {"GET": (Permission.USAGE_VIEW, Scope.READ), "PUT": BUDGETS_ACCESS}

    @extend_schema(operation_id="budgets_list", responses={200: BudgetsOutput})
    def get(self, request: Request) -> Response:
        return Response(_budgets(request._request.tenant.pk))

    @extend_schema(
        operation_id="budgets_set",
        request=BudgetInput,
        responses={
            200: BudgetsOutput,
            400: OpenApiResponse(description="`project_invalid`, `budget_invalid` or `on_exhausted_invalid`."),
        },
        description="Set the workspace's or a project's monthly budget; with neither amount, remove it.",
    )
    def put(self, request: Request) -> Response:
        data = BudgetInput(data=request.data)
        data.is_valid(raise_exception=True)
        tenant_id = request._request.tenant.pk
        budget_set(actor=request.user, tenant_id=tenant_id, request=request._request, **data.validated_data)
        return Response(_budgets(tenant_id))
