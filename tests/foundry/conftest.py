"""Fixtures of the platform-level tests."""

import pytest


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
