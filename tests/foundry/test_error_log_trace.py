"""A returned 4xx is logged (`ErrorResponseLogMiddleware`) with the trace and span ids of its
server span, though that span has ended by then (docs/observability.md, "Logs")."""

import pytest
from django.conf import settings as django_settings
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from foundry.telemetry import ServerSpanMiddleware
from tests.api.conftest import api, issue
from tests.foundry.test_logs import json_log_lines, of_logger

_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))


class ReviewServerSpans(ServerSpanMiddleware):
    """The real middleware; only its tracer is this test's provider's."""

    def __init__(self, get_response):
        super().__init__(get_response)
        self.tracer = _PROVIDER.get_tracer("review")


@pytest.fixture
def production_spans(settings):
    """MIDDLEWARE as `_django_middleware_place` leaves it when tracing is on."""
    middleware = [m for m in django_settings.MIDDLEWARE if m != "foundry.telemetry.ServerSpanMiddleware"]
    at = middleware.index("apps.tenants.middleware.TenantRoutingMiddleware") + 1
    settings.MIDDLEWARE = [*middleware[:at], f"{__name__}.ReviewServerSpans", *middleware[at:]]
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def test_a_returned_404_is_logged_with_the_trace_of_its_server_span(acme, production_spans):
    client = api(acme, issue(acme))
    with json_log_lines() as lines:
        response = client.get("/api/v1/runs/x", HTTP_X_REQUEST_ID="req-review-obs-1")
    assert response.status_code == 404
    [span] = [s for s in production_spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    [line] = of_logger(lines, "django.request")
    assert line["request_id"] == "req-review-obs-1" and line["tenant"] == "acme"
    # The documented promise: the line joins to the request's trace.
    assert line["trace_id"] == f"{span.context.trace_id:032x}", (
        f"the django.request line of a traced request has trace_id={line['trace_id']!r}: "
        "ErrorResponseLogMiddleware logs after ServerSpanMiddleware has ended the span"
    )
