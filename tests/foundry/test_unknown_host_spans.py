"""A request for an unknown host exports no span (docs/observability.md, "Traces": the server span
starts after host routing): the routing lookup's own Redis and PostgreSQL calls run with
instrumentation suppressed, or each would be a root span of a trace of its own."""

import uuid

from django.test import Client
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def test_a_request_for_an_unknown_host_exports_no_spans(db):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    psycopg_instr, redis_instr = PsycopgInstrumentor(), RedisInstrumentor()
    psycopg_instr.instrument(tracer_provider=provider, enable_commenter=False, skip_dep_check=True)
    redis_instr.instrument(tracer_provider=provider)
    try:
        host = f"scanner-{uuid.uuid4().hex[:12]}.localhost"  # no workspace is served there
        response = Client(HTTP_HOST=host).get("/wp-login.php")
    finally:
        redis_instr.uninstrument()
        psycopg_instr.uninstrument()
    assert response.status_code == 404
    spans = exporter.get_finished_spans()
    assert not spans, (
        f"one request to an unknown host exported {len(spans)} spans, each a trace root "
        f"({sorted(s.name for s in spans)}; parents: {[s.parent for s in spans]})"
    )
