"""Prompts and completions reach traces only when the workspace allows it (docs/observability.md
"Traces": `trace_content`, default off). A tool call's arguments are written by the model (they
are part of its completion: names, invoice numbers, whatever the user typed), yet an `http`
tool sends them as the query string, and the httpx instrumentation that foundry/telemetry.py
installs puts the full URL on the client span (`url.full`) whatever the workspace decided.

The instrumentation is given a tracer provider of the test's own and removed afterwards."""

import json

from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from foundry.telemetry import client_url_redact
from tests.runtime.conftest import customer_lookup, server  # noqa: F401 - a fixture

PRIVATE = "Jane Q. Customer, IBAN DE89370400440532013000"


def test_http_tool_arguments_do_not_reach_spans_without_trace_content(server):  # noqa: F811
    toolbox = customer_lookup(server)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=provider, request_hook=client_url_redact)  # as telemetry_setup
    try:
        result = json.loads(toolbox.run(toolbox.get("lookup"), {"customer": PRIVATE}, timeout=5))
    finally:
        instrumentor.uninstrument()
    assert result["status"] == 200
    spans = exporter.get_finished_spans()
    assert spans, "the http tool's request is traced"
    carried = {
        (span.name, key): value
        for span in spans
        for key, value in span.attributes.items()
        if isinstance(value, str) and ("IBAN" in value or "DE89370400440532013000" in value)
    }
    assert not carried, f"the model's tool arguments are on spans: {carried}"
    assert [span.attributes.get("http.url") for span in spans] == [server.origin + "/"]  # the origin only
