"""Django's server spans (foundry/telemetry.py ServerSpanMiddleware): one per request, named by
its route, in a trace of its own linked to the caller's (continued when callers are trusted:
FOUNDRY_TRACE_TRUST_CALLERS), with the HTTP attributes and the answer's status — but never the
request's path or query (an invitation link's token, a filter naming people).
End to end through gunicorn (with the tenant on every span): tests/foundry/test_telemetry.py.

The middleware is given a tracer of the test's own provider (the process's global one is left alone)."""

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import resolve
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from foundry.telemetry import ServerSpanMiddleware
from tests.conftest import client_for
from tests.foundry.conftest import TracedServerSpans

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


def test_a_request_is_one_server_span_named_by_its_route_in_the_callers_trace(exporter, settings):
    settings.FOUNDRY_TRACE_TRUST_CALLERS = True  # a proxy or service in front sets traceparent
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
        "http.flavor": "1.1",
        "net.peer.ip": "127.0.0.1",
        "http.user_agent": "curl/8",
        "http.route": "api/v1/runs/<str:run_id>",
        "http.status_code": 200,
    }
    assert span.status.status_code == StatusCode.UNSET


def test_an_untrusted_callers_trace_is_linked_not_continued_nor_its_sampling_taken(exporter):
    """A client's traceparent does not decide the sampling: "sampled" on every request would have
    each traced and exported (a ratio sampler's share ignored), "not sampled" none. The request
    starts a trace of its own, sampled here, with a link to the caller's span."""
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    for flags, sampled in (("01", 0), ("00", 200)):
        provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.0 if flags == "01" else 1.0)))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        handler = ServerSpanMiddleware(lambda request: HttpResponse())
        handler.tracer = provider.get_tracer("test")
        exporter.clear()
        for _ in range(200):
            handler(
                RequestFactory().get(
                    "/api/v1/workspace",
                    HTTP_HOST="acme.localhost",
                    HTTP_TRACEPARENT=f"00-{PARENT_TRACE}-{PARENT_SPAN}-{flags}",
                )
            )
        spans = exporter.get_finished_spans()
        assert len(spans) == sampled, f"flags {flags}: {len(spans)} of 200 traced"
    span = spans[0]
    assert span.parent is None and format(span.context.trace_id, "032x") != PARENT_TRACE
    (link,) = span.links
    assert (format(link.context.trace_id, "032x"), format(link.context.span_id, "016x")) == (PARENT_TRACE, PARENT_SPAN)


def test_a_request_without_a_traceparent_starts_a_trace(exporter):
    handler = middleware(exporter, lambda request: HttpResponse(status=404))
    handler(RequestFactory().get("/api/v1/workspace", HTTP_HOST="acme.localhost"))
    (span,) = exporter.get_finished_spans()
    assert span.parent is None and span.name == "GET api/v1/workspace"
    assert span.attributes["http.status_code"] == 404 and span.status.status_code == StatusCode.UNSET


def test_a_request_without_trace_headers_starts_a_trace_even_inside_another_span(exporter):
    """Without the propagators' headers the span is a root, as `extract` would make it (the
    propagators are not asked): never a child of whatever span the server happens to be in."""
    handler = middleware(exporter, lambda request: HttpResponse(status=200))
    outer = TracerProvider().get_tracer("outer")
    with outer.start_as_current_span("somewhere else"):
        handler(RequestFactory().get("/api/v1/workspace", HTTP_HOST="acme.localhost"))
    (span,) = exporter.get_finished_spans()
    assert span.parent is None


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


# --- in the real middleware chain (right after host routing, where _django_middleware_place puts it)


def server_spans(exporter):
    return [span for span in exporter.get_finished_spans() if span.kind == SpanKind.SERVER]


def test_an_invitation_links_secret_token_is_not_put_on_the_server_span(acme, chain_spans):
    """The invitation link /invite/<uidb64>/<token>/ is a bearer secret (whoever holds it sets the
    member's password). The span's `http.target` is the raw path, so every trace exported for the
    invitee's first click carries a token that is still valid: PasswordResetConfirmView only moves
    it into the session and redirects; it stays usable until the password is set."""
    added = client_for(acme, "owner@acme.test").post("/members/add/", {"email": "new@acme.test", "role": "admin"})
    link = added.context["invite_url"].removeprefix("http://acme.localhost")
    chain_spans.clear()

    invitee = Client(HTTP_HOST="acme.localhost")
    assert invitee.get(link).status_code == 302  # the invitee's first click

    (span,) = server_spans(chain_spans)
    token = link.rstrip("/").rsplit("/", 1)[1]
    carried = {key: value for key, value in span.attributes.items() if token in str(value)}
    assert not carried and token not in span.name, f"the invitation token is on the server span: {carried}"
    assert span.attributes["http.route"] == "invite/<uidb64>/<token>/"


def test_a_clients_made_up_method_does_not_name_the_span(acme, chain_spans):
    """Span names are low-cardinality by contract (OpenTelemetry HTTP semantic conventions: an
    unknown method is `_OTHER` and the span named `HTTP`, as the replaced Django instrumentation
    did through sanitize_method). Here any client-chosen method string becomes the span's name and
    `http.method`, so one script can mint unbounded span names in the tracing backend."""
    Client(HTTP_HOST="acme.localhost").generic("X-A1B2C3D4E5", "/api/v1/workspace")
    (span,) = server_spans(chain_spans)
    assert "X-A1B2C3D4E5" not in span.name, span.name
    assert span.attributes["http.method"] == "_OTHER", span.attributes["http.method"]


def test_the_callers_baggage_is_not_taken_over(settings):
    """A trusted caller's trace is continued, its baggage is not: untrusted baggage would otherwise
    ride this process's outgoing calls (httpx, Celery) to places the caller does not reach."""
    settings.FOUNDRY_TRACE_TRUST_CALLERS = True
    from django.http import HttpResponse
    from opentelemetry import baggage

    seen = {}

    def view(request):
        seen.update(baggage.get_all())
        seen["trace_id"] = format(trace.get_current_span().get_span_context().trace_id, "032x")
        return HttpResponse()

    handler = TracedServerSpans(view)
    request = RequestFactory().get(
        "/api/v1/workspace",
        HTTP_HOST="acme.localhost",
        HTTP_TRACEPARENT=f"00-{PARENT_TRACE}-{PARENT_SPAN}-01",
        HTTP_BAGGAGE="caller.team=billing",
    )
    handler(request)
    assert seen == {"trace_id": PARENT_TRACE}
