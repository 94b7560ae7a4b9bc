"""List endpoints: AIP-160 `filter`, AIP-132 `order_by`, AIP-158 `page_size`/`page_token`."""

from dataclasses import dataclass

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from foundry.filtering import FilterError, FilterSpec
from foundry.filtering.ordering import OrderSpec
from foundry.filtering.pagination import Page, page_size_parse, paginate
from foundry.query import query_once


@dataclass(frozen=True)
class ListSpec:
    """One list endpoint: `{<resource>: [...], "next_page_token": ...}` of `serializer` rows."""

    resource: str
    filters: FilterSpec
    ordering: OrderSpec
    serializer: type[serializers.Serializer]

    def respond(self, request: Request, queryset: QuerySet) -> Response:
        page = self.page(request, queryset)
        rows = self.serializer(page.items, many=True, context={"request": request}).data
        return Response({self.resource: rows, "next_page_token": page.next_page_token})

    def schema(self, operation_id: str):
        """The OpenAPI description of the list operation (decorator)."""
        return extend_schema(operation_id=operation_id, parameters=self.openapi_parameters(), responses=_page_of(self))

    def page(self, request: Request, queryset: QuerySet) -> Page:
        # Given twice (`?page_size=1&page_size=1000`, `?filter=x&filter=`): refused, not one guessed at.
        params = {
            name: query_once(request.query_params, name, "repeated_parameter", error=FilterError)
            for name in ("filter", "order_by", "page_size", "page_token")
        }
        filter_text = params["filter"] or ""
        compiled = self.filters.compile(filter_text)
        return paginate(
            queryset.filter(compiled.q),
            # The path too: a token of one run's steps (or of /domains) is no token of another's (/agents).
            resource=f"{self.resource}@{getattr(request, 'path', '')}",
            ordering=self.ordering.parse(params["order_by"]),
            filter_text=filter_text,
            page_size=page_size_parse(params["page_size"]),
            page_token=params["page_token"] or None,
        )

    def openapi_parameters(self) -> list[OpenApiParameter]:
        # The default as a caller may write it: the primary key that breaks ties is named only
        # where it is an order field of its own (a client sending the default gets that order).
        default = ", ".join(f.spelled() for f in self.ordering.default.fields if f.name in self.ordering.fields)
        return [
            OpenApiParameter(
                "filter", str, description=f"AIP-160 filter (docs/api/filtering.md). Fields: {self.filters.describe()}."
            ),
            OpenApiParameter(
                "order_by",
                str,
                description="AIP-132 order, e.g. `name desc`. Fields: "
                + ", ".join(sorted(self.ordering.fields))
                + f". Default: `{default}`; ties in the order are broken by the primary key.",
            ),
            OpenApiParameter(
                "page_size",
                {"type": "integer", "minimum": 0},
                description="Items per page: default 50 (also for 0), at most 1000 (a larger number is taken as 1000).",
            ),
            OpenApiParameter("page_token", str, description="`next_page_token` of the previous page."),
        ]


_PAGES: dict[str, tuple[type, type]] = {}


def _page_of(spec: ListSpec) -> type:
    """The page serializer of a list, one class per name (lists of one resource share it)."""
    name = f"{spec.resource.title()}Page"
    known = _PAGES.get(name)
    if known is None:
        page = {spec.resource: spec.serializer(many=True), "next_page_token": serializers.CharField()}
        known = _PAGES[name] = (spec.serializer, inline_serializer(name, page))
    if known[0] is not spec.serializer:
        raise ValueError(f"two lists named {spec.resource!r} list different things")
    return known[1]
