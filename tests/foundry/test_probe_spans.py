"""What is not traced: a health probe (/readyz's database and Redis checks run with
instrumentation suppressed), and a request for a host that is no workspace (docs/observability.md,
"Traces": the server span starts after host routing, and the routing lookup's own Redis and
PostgreSQL calls run suppressed, or each would be a root span of a trace of its own)."""

import uuid

from django.test import Client
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def spans_of(host: str, path: str):
    """(the response, the spans exported) of one GET with psycopg and Redis instrumented."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    psycopg_instr, redis_instr = PsycopgInstrumentor(), RedisInstrumentor()
    psycopg_instr.instrument(tracer_provider=provider, enable_commenter=False, skip_dep_check=True)
    redis_instr.instrument(tracer_provider=provider)
    try:
        response = Client(HTTP_HOST=host).get(path)
    finally:
        redis_instr.uninstrument()
        psycopg_instr.uninstrument()
    return response, exporter.get_finished_spans()


def test_a_readiness_probe_makes_no_spans(db):
    response, spans = spans_of("10.0.0.7", "/readyz")  # a load balancer's probe, by address
    assert response.status_code in (200, 503)
    assert not spans, f"one /readyz probe exported {len(spans)} spans: {sorted({s.name for s in spans})}"


def test_a_request_for_an_unknown_host_exports_no_spans(db):
    host = f"scanner-{uuid.uuid4().hex[:12]}.localhost"  # no workspace is served there
    response, spans = spans_of(host, "/wp-login.php")
    assert response.status_code == 404
    assert not spans, (
        f"one request to an unknown host exported {len(spans)} spans, each a trace root "
        f"({sorted(s.name for s in spans)}; parents: {[s.parent for s in spans]})"
    )
