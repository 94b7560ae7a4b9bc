"""List endpoints: AIP-160 `filter`, AIP-132 `order_by`, AIP-158 `page_size`/`page_token`."""

from dataclasses import dataclass

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request

from foundry.filtering import FilterSpec
from foundry.filtering.ordering import OrderSpec
from foundry.filtering.pagination import Page, page_size_parse, paginate


@dataclass(frozen=True)
class ListSpec:
    resource: str
    filters: FilterSpec
    ordering: OrderSpec

    def page(self, request: Request, queryset: QuerySet) -> Page:
        params = request.query_params
        filter_text = params.get("filter", "")
        compiled = self.filters.compile(filter_text)
        return paginate(
            queryset.filter(compiled.q),
            resource=self.resource,
            ordering=self.ordering.parse(params.get("order_by")),
            filter_text=filter_text,
            page_size=page_size_parse(params.get("page_size")),
            page_token=params.get("page_token") or None,
        )

    def openapi_parameters(self) -> list[OpenApiParameter]:
        return [
            OpenApiParameter(
                "filter", str, description=f"AIP-160 filter (docs/api/filtering.md). Fields: {self.filters.describe()}."
            ),
            OpenApiParameter(
                "order_by",
                str,
                description="AIP-132 order, e.g. `name desc`. Fields: "
                + ", ".join(sorted(self.ordering.fields))
                + f". Default: `{self.ordering.default.canonical()}`.",
            ),
            OpenApiParameter("page_size", int, description="Items per page: default 50, at most 1000."),
            OpenApiParameter("page_token", str, description="`next_page_token` of the previous page."),
        ]
