"""/mcp with tracing on: one server span per request (OpenTelemetry's ASGI middleware,
foundry/asgi.py), whose names stay few, and which names its workspace from the moment the
gateway has routed the host, a refused request's too (docs/observability.md, "Traces").

The MCP SDK (mcp 2.x) ships a tracing middleware of its own, on in every server, that opened a
second server span per message named `tools/call <name>` with whatever name the caller sent:
an unbounded span name from any token holder. The server leaves it out (foundry/mcp/server.py).

In-process: foundry.asgi imported again with tracing "on", the ASGI instrumentation and the
SDK's tracer given a provider of the test's own (the process's global one is left alone)."""

import importlib
import json
import sys
import uuid

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from foundry.telemetry import TenantSpanProcessor
from tests.asgi_calls import asgi_post
from tests.mcp.conftest import tokens_issue


@pytest.fixture
def traced(monkeypatch, fresh_tenant, django_db_blocker):
    import mcp.shared._otel as sdk_otel
    import opentelemetry.instrumentation.asgi as asgi_instr

    import foundry.telemetry

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(TenantSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    original = asgi_instr.OpenTelemetryMiddleware

    class OurProvider(original):
        def __init__(self, app, **kwargs):
            super().__init__(app, tracer_provider=provider, **kwargs)

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(foundry.telemetry, "telemetry_setup", lambda *a, **k: True)
    monkeypatch.setattr(asgi_instr, "OpenTelemetryMiddleware", OurProvider)
    monkeypatch.setattr(sdk_otel, "_tracer", provider.get_tracer("mcp-python-sdk"))
    with django_db_blocker.unblock():
        token = tokens_issue(fresh_tenant)["admin"]
    saved = sys.modules.pop("foundry.asgi", None)
    try:
        module = importlib.import_module("foundry.asgi")
        with django_db_blocker.unblock():  # the gateway's threads read the committed workspace
            yield module, exporter, fresh_tenant, token
    finally:
        sys.modules.pop("foundry.asgi", None)
        if saved is not None:
            sys.modules["foundry.asgi"] = saved


def _post(module, host: str, token: str, payload: dict) -> tuple[int, bytes]:
    """POST `payload` to /mcp through the whole ASGI application."""
    headers = [(b"mcp-protocol-version", b"2025-06-18"), (b"authorization", f"Bearer {token}".encode())]
    answer = asgi_post(
        module.application, host, json.dumps(payload).encode(), headers, session_manager=module.mcp.session_manager
    )
    return answer.status, answer.body


def _call_unknown_tool(traced):
    module, exporter, tenant, token = traced
    made_up = f"made-up-{uuid.uuid4().hex}"
    payload = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": made_up, "arguments": {}}}
    status, body = _post(module, f"{tenant.slug}.localhost", token, payload)
    assert status == 200, body
    return exporter.get_finished_spans(), made_up


def test_a_callers_made_up_tool_name_does_not_name_a_span(traced):
    spans, made_up = _call_unknown_tool(traced)
    named = [s.name for s in spans if made_up in s.name]
    carried = [(s.name, k) for s in spans for k, v in s.attributes.items() if isinstance(v, str) and made_up in v]
    assert not named and not carried, f"client-chosen tool name on spans: {named} {carried}"


def test_an_mcp_request_is_one_server_span(traced):
    spans, _ = _call_unknown_tool(traced)
    servers = [s.name for s in spans if s.kind == SpanKind.SERVER]
    assert len(servers) == 1, f"one /mcp request, several server spans: {servers}"


def test_a_refused_mcp_request_s_server_span_carries_its_tenant(traced):
    """As the API's 401 for a wrong token does (Django binds the tenant when it routes the host)."""
    module, exporter, tenant, _token = traced
    payload = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    status, _ = _post(module, f"{tenant.slug}.localhost", "fdy_not-a-real-token-0000000000", payload)
    assert status == 401
    (span,) = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert (span.attributes.get("tenant.id"), span.attributes.get("tenant.slug")) == (tenant.pk, tenant.slug)
