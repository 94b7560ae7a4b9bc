"""Fixtures of the platform-level tests."""

import pytest
from django.conf import settings as django_settings
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from foundry.telemetry import ServerSpanMiddleware, TenantSpanProcessor

# A tracer provider of the tests' own (never the process's global one), as telemetry_setup builds
# it: tenant.id stamped on every span, each kept in memory.
SPAN_EXPORTER = InMemorySpanExporter()
SPAN_PROVIDER = TracerProvider()
SPAN_PROVIDER.add_span_processor(TenantSpanProcessor())
SPAN_PROVIDER.add_span_processor(SimpleSpanProcessor(SPAN_EXPORTER))


class TracedServerSpans(ServerSpanMiddleware):
    """The real middleware; only its tracer is the tests' provider's."""

    def __init__(self, get_response):
        super().__init__(get_response)
        self.tracer = SPAN_PROVIDER.get_tracer("test")


@pytest.fixture
def chain_spans(settings):
    """MIDDLEWARE as `_django_middleware_place` leaves it when tracing is on (the server spans
    right after host routing): the exporter holding the spans."""
    middleware = [m for m in django_settings.MIDDLEWARE if m != "foundry.telemetry.ServerSpanMiddleware"]
    at = middleware.index("apps.tenants.middleware.TenantRoutingMiddleware") + 1
    settings.MIDDLEWARE = [*middleware[:at], f"{__name__}.TracedServerSpans", *middleware[at:]]
    SPAN_EXPORTER.clear()
    yield SPAN_EXPORTER
    SPAN_EXPORTER.clear()


@pytest.fixture
def graph_spans():
    """The spans the agent graph records (steps, model calls, tools), on a tracer provider of the
    test's own (never the process's global one): the in-memory exporter holding them."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from foundry.runtime import graph

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer, graph._tracer = graph._tracer, provider.get_tracer("test")
    try:
        yield exporter
    finally:
        graph._tracer = tracer
