"""/api/v1/usage/statement: the workspace's usage statement of a month or a range of days, as
JSON or CSV (apps/billing/statements.py).

`usage.view` with the token scope `read`: every role may read usage (the matrix's choice, the
same figures the console's usage page and MCP `get_usage` show), and a reporting token needs no
power to change anything.
"""

from django.http import HttpResponse
from django.http.request import MediaType
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotAcceptable
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import Permission
from apps.billing.statements import FORMATS, statement, statement_query
from apps.tokens.models import Scope
from foundry.api.access import AnyAccept, TenantAPIView


class StatementAmounts(serializers.Serializer):
    calls = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cached_tokens = serializers.IntegerField(help_text="Of the input tokens, those read from the provider's cache.")
    cost_usd = serializers.CharField(help_text="USD of the priced calls, as a decimal string (8 places).")
    unpriced_calls = serializers.IntegerField(help_text="Calls no price was known for when they were recorded.")
    cache_write_tokens = serializers.IntegerField(
        help_text="Of the input tokens, those written to the provider's prompt cache (priced at the cache-write "
        "price where the price list has one, else at the input price)."
    )


class StatementLine(StatementAmounts):
    project = serializers.CharField()
    agent = serializers.CharField()
    provider = serializers.CharField()
    model = serializers.CharField()


class StatementPeriod(serializers.Serializer):
    month = serializers.CharField(allow_null=True, help_text="YYYY-MM when the period is a calendar month.")
    start = serializers.DateField()
    end = serializers.DateField(help_text="The last day counted (included).")


class StatementOutput(serializers.Serializer):
    tenant = serializers.CharField()
    period = StatementPeriod()
    as_of = serializers.DateTimeField(help_text="Usage recorded before this moment is counted.")
    currency = serializers.CharField()
    lines = StatementLine(many=True)
    totals = StatementAmounts()


_MEDIA = {"json": "application/json", "csv": "text/csv"}


def _accepted(header: str, media: str) -> float:
    """The quality `Accept` gives `media` (0: refused), from the most specific range naming it;
    parameters other than q (`; charset=utf-8`) do not narrow a range here."""
    best, specificity = 0.0, -1
    for item in header.split(",") if header.strip() else ["*/*"]:
        kind, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        ranged = MediaType(kind)
        if ranged.match(media):
            exact = (ranged.main_type != "*") + (ranged.sub_type != "*")
            if exact > specificity:
                best, specificity = q, exact
    return best


class UsageStatementApi(TenantAPIView):
    access = {"GET": (Permission.USAGE_VIEW, Scope.READ)}
    content_negotiation_class = AnyAccept  # `?format=` names the statement's format, not a renderer

    @extend_schema(
        operation_id="usage_statement",
        parameters=[
            OpenApiParameter("month", str, description="YYYY-MM (UTC). Default: the current month."),
            OpenApiParameter("start", OpenApiTypes.DATE, description="Instead of a month: the first day (UTC)."),
            OpenApiParameter("end", OpenApiTypes.DATE, description="With `start`: the last day, included."),
            OpenApiParameter(
                "format", str, enum=list(FORMATS), description="`json` or `csv`; without it, the one `Accept` prefers."
            ),
        ],
        responses={
            (200, "application/json"): StatementOutput,
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="A header line, one line per project, agent and model, and a last line `TOTAL`.",
            ),
            400: OpenApiResponse(description="`period_invalid`, `period_in_future` or `format_invalid`."),
        },
    )
    def get(self, request: Request) -> Response | HttpResponse:
        fmt, period = statement_query(request.query_params)
        # The format is `?format=`'s, else the one `Accept` prefers; an Accept without it is 406.
        quality = {name: _accepted(request.headers.get("Accept", ""), media) for name, media in _MEDIA.items()}
        if "format" not in request.query_params:
            fmt = max(quality, key=lambda name: quality[name])  # a tie: json, the first
        if quality[fmt] <= 0:
            raise NotAcceptable("This statement is available as application/json or text/csv (?format=).")
        tenant = request._request.tenant
        result = statement(tenant_id=tenant.pk, tenant_slug=tenant.slug, period=period)
        if fmt == "csv":
            response = HttpResponse(result.to_csv(), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="{result.filename}.csv"'
        else:
            response = Response(result.to_dict())
        response["Cache-Control"] = "no-store"
        return response
