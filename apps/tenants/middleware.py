"""Selects the tenant (and its schema and URLconf) from the request's host.

Placed before everything that touches the database or the session. The bare base domain is
the operator console (public schema); `<slug>.<base>` and any other registered domain is a
tenant; every other host is a 404 — it never falls through to the public schema. A suspended
tenant gets a 403 and nothing else runs but the server span, when tracing places one right after
this (foundry/telemetry.py): the refusal is a span and a log line of that tenant's.
"""

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port
from django.utils.module_loading import import_string
from opentelemetry.instrumentation.utils import suppress_instrumentation

from apps.tenants.models import Tenant
from apps.tenants.routing import TenantRoute, route_for_host
from foundry.errors import error_response
from foundry.telemetry import ServerSpanMiddleware, streamed_within, tenant_bound

_ROUTING = f"{__name__}.TenantRoutingMiddleware"


def _tenant_from_route(route: TenantRoute) -> Tenant:
    tenant = Tenant(
        id=route.tenant_id,
        schema_name=route.schema_name,
        slug=route.slug,
        name=route.name,
        plan=route.plan,
        status=route.status,
    )
    tenant._state.adding = False
    tenant._state.db = "default"
    return tenant


class TenantRoutingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self._suspended = self._suspended_refusal
        # Tracing puts the server span right after this middleware: its refusals get one too.
        middleware = list(settings.MIDDLEWARE)
        following = middleware[middleware.index(_ROUTING) + 1 :] if _ROUTING in middleware else []
        spans = import_string(following[0]) if following else None
        if isinstance(spans, type) and issubclass(spans, ServerSpanMiddleware):
            self._suspended = spans(self._suspended_refusal)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            host, _port = split_domain_port(request.get_host())
        except DisallowedHost:
            host = ""
        host = host.lower().rstrip(".")
        if not host:
            return self._unknown_host(request)

        if host == settings.FOUNDRY_BASE_DOMAIN:
            connection.set_schema_to_public()
            request.tenant = None
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
            return self.get_response(request)

        # Not traced: the server span starts after routing (foundry/telemetry.py), and the lookup's
        # own Redis and PostgreSQL calls would each be a trace of its own — three for every made-up
        # host a scanner sends, and a stray one whenever a workspace's cached route expires.
        with suppress_instrumentation():
            route = route_for_host(host)
        if route is None:
            return self._unknown_host(request)
        if not route.is_active:
            connection.set_schema_to_public()
            request.tenant = _tenant_from_route(route)  # named by the error's log line
            with tenant_bound(route.tenant_id, route.slug):
                return self._suspended(request)
        tenant = _tenant_from_route(route)
        connection.set_tenant(tenant)
        request.tenant = tenant
        with tenant_bound(tenant.pk, tenant.slug):
            return streamed_within(self.get_response(request), tenant=(tenant.pk, tenant.slug))

    @staticmethod
    def _suspended_refusal(request: HttpRequest) -> HttpResponse:
        return error_response(
            request,
            status=403,
            code="tenant_suspended",
            message=f"The workspace “{request.tenant.name}” is suspended. Contact your administrator.",
        )

    @staticmethod
    def _unknown_host(request: HttpRequest) -> HttpResponse:
        connection.set_schema_to_public()
        return error_response(
            request, status=404, code="unknown_host", message="No workspace is served at this address."
        )
