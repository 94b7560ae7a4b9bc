"""Health probes are not traced: a /readyz makes no spans (its database and Redis checks run with
instrumentation suppressed)."""

from django.test import Client
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def test_a_readiness_probe_makes_no_spans(db):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    psycopg_instr, redis_instr = PsycopgInstrumentor(), RedisInstrumentor()
    psycopg_instr.instrument(tracer_provider=provider, enable_commenter=False, skip_dep_check=True)
    redis_instr.instrument(tracer_provider=provider)
    try:
        response = Client(HTTP_HOST="10.0.0.7").get("/readyz")  # a load balancer's probe, by address
    finally:
        redis_instr.uninstrument()
        psycopg_instr.uninstrument()
    assert response.status_code in (200, 503)
    spans = exporter.get_finished_spans()
    assert not spans, f"one /readyz probe exported {len(spans)} spans: {sorted({s.name for s in spans})}"
