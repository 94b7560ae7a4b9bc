"""/mcp's server span comes from OpenTelemetry's ASGI middleware (foundry/asgi.py), which extracts
the caller's context with the global propagators: W3C trace context and baggage. As Django's
server spans (docs/observability.md "Traces"; tests/foundry/test_server_spans.py), it takes
neither the caller's baggage, which would otherwise ride this process's outgoing calls (the Celery
message of a run the MCP call starts; from the worker, providers, http tools, sinks), nor, unless
callers are trusted (FOUNDRY_TRACE_TRUST_CALLERS), its trace context, whose "sampled" flag would
decide the sampling.

foundry.asgi is imported again with tracing "on" (the endpoint set, the process-wide SDK setup
stubbed out) and an McpGateway that records the context the MCP app runs in."""

import importlib
import sys

import pytest
from opentelemetry import baggage, trace

from tests.asgi_calls import asgi_post

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def traced_asgi(monkeypatch, db):
    import foundry.mcp.gateway
    import foundry.telemetry

    seen = {}

    class Probe:
        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            seen["baggage"] = dict(baggage.get_all())
            seen["trace_id"] = format(trace.get_current_span().get_span_context().trace_id, "032x")
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(foundry.telemetry, "telemetry_setup", lambda *a, **k: True)
    monkeypatch.setattr(foundry.mcp.gateway, "McpGateway", Probe)
    saved = sys.modules.pop("foundry.asgi", None)
    try:
        module = importlib.import_module("foundry.asgi")
        yield module, seen
    finally:
        sys.modules.pop("foundry.asgi", None)
        if saved is not None:
            sys.modules["foundry.asgi"] = saved


def _call(application, headers):
    return asgi_post(application, "acme.localhost", b"{}", headers).messages


def test_an_mcp_callers_baggage_is_not_taken_over(traced_asgi):
    module, seen = traced_asgi
    _call(
        module.application,
        [
            (b"traceparent", f"00-{PARENT_TRACE}-{PARENT_SPAN}-01".encode()),
            (b"baggage", b"caller.team=billing,tenant.id=42"),
        ],
    )
    assert "baggage" in seen, "the request reached the MCP app"
    assert seen["baggage"] == {}, f"the MCP caller's baggage is taken over: {seen['baggage']}"


def test_an_mcp_callers_trace_is_not_continued_unless_callers_are_trusted(traced_asgi):
    module, seen = traced_asgi
    _call(module.application, [(b"traceparent", f"00-{PARENT_TRACE}-{PARENT_SPAN}-01".encode())])
    assert "trace_id" in seen, "the request reached the MCP app"
    assert seen["trace_id"] != PARENT_TRACE
