"""Django's server spans (foundry/telemetry.py ServerSpanMiddleware): one per request, named by
its route, continuing the caller's trace, with the HTTP attributes and the answer's status.
End to end through gunicorn (with the tenant on every span): tests/foundry/test_telemetry.py.

The middleware is given a tracer of the test's own provider (the process's global one is left alone)."""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import resolve
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from foundry.telemetry import ServerSpanMiddleware

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def exporter():
    return InMemorySpanExporter()


def middleware(exporter, answer, *, urlconf="foundry.urls_tenant"):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    def view(request):
        request.resolver_match = resolve(request.path, urlconf=urlconf)
        return answer(request)

    handler = ServerSpanMiddleware(view)
    handler.tracer = provider.get_tracer("test")
    return handler


def test_a_request_is_one_server_span_named_by_its_route_in_the_callers_trace(exporter):
    handler = middleware(exporter, lambda request: HttpResponse(status=200))
    request = RequestFactory().get(
        "/api/v1/runs/7b0c2c9e-3a7e-4bb4-9a57-2c1a5f0f1e11?filter=input%3D%22Jane%20Doe%22",
        HTTP_HOST="acme.localhost",
        HTTP_USER_AGENT="curl/8",
        HTTP_TRACEPARENT=f"00-{PARENT_TRACE}-{PARENT_SPAN}-01",
    )
    assert handler(request).status_code == 200

    (span,) = exporter.get_finished_spans()
    assert span.kind == SpanKind.SERVER
    assert span.name == "GET api/v1/runs/<str:run_id>"
    assert format(span.context.trace_id, "032x") == PARENT_TRACE
    assert format(span.parent.span_id, "016x") == PARENT_SPAN
    assert dict(span.attributes) == {
        "http.method": "GET",
        "http.scheme": "http",
        "http.host": "acme.localhost",
        "http.target": "/api/v1/runs/7b0c2c9e-3a7e-4bb4-9a57-2c1a5f0f1e11",  # no query: a filter may name people
        "http.flavor": "1.1",
        "net.peer.ip": "127.0.0.1",
        "http.user_agent": "curl/8",
        "http.route": "api/v1/runs/<str:run_id>",
        "http.status_code": 200,
    }
    assert span.status.status_code == StatusCode.UNSET


def test_a_request_without_a_traceparent_starts_a_trace(exporter):
    handler = middleware(exporter, lambda request: HttpResponse(status=404))
    handler(RequestFactory().get("/api/v1/workspace", HTTP_HOST="acme.localhost"))
    (span,) = exporter.get_finished_spans()
    assert span.parent is None and span.name == "GET api/v1/workspace"
    assert span.attributes["http.status_code"] == 404 and span.status.status_code == StatusCode.UNSET


def test_a_server_error_and_its_exception_mark_the_span(exporter):
    def failing(request):
        error = RuntimeError("boom")
        handler.process_exception(request, error)  # as Django calls it before answering 500
        return HttpResponse(status=500)

    handler = middleware(exporter, failing)
    handler(RequestFactory().post("/api/v1/runs", HTTP_HOST="acme.localhost"))
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]
    assert span.events[0].attributes["exception.type"] == "RuntimeError"


def test_excluded_urls_are_not_traced(exporter, monkeypatch):
    monkeypatch.setenv("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", "api/v1/workspace")
    handler = middleware(exporter, lambda request: HttpResponse(status=200))
    handler(RequestFactory().get("/api/v1/workspace", HTTP_HOST="acme.localhost"))
    handler(RequestFactory().get("/api/v1/runs", HTTP_HOST="acme.localhost"))
    assert [span.name for span in exporter.get_finished_spans()] == ["GET api/v1/runs"]
