"""/mcp's server span (foundry/asgi.py: opentelemetry's ASGI middleware) carries no query
string, as Django's server spans carry none (docs/observability.md "Traces": a query may name
people, and some MCP clients put an `?access_token=` in the URL they are configured with): the
instrumentation sees the request without its query, and the MCP app gets it back. End to end as
deployed: uvicorn serving foundry.asgi with tracing on, exporting to an OTLP receiver on
loopback (the pattern of tests/foundry/test_telemetry.py)."""

import http.client
import json
import sys

from tests.conftest import ROOT, free_port, server_env, server_process
from tests.foundry.test_telemetry import SERVER, otel_env, receiver  # noqa: F401 - a fixture

SECRET = "fnd_live_q9w8e7r6t5y4u3i2o1p0secretquerytoken"
PERSON = "jane.doe@example.com"


def test_an_mcp_requests_query_string_is_not_put_on_its_server_span(receiver, fresh_tenant):  # noqa: F811
    port = free_port()
    env = server_env(**otel_env(receiver, "unused"))
    command = [sys.executable, "-m", "uvicorn", "foundry.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--lifespan", "on", "--no-access-log"]
    log = ROOT / "test-artifacts" / f"uvicorn-review-obs-{port}.log"
    with server_process(command, port=port, env=env, log=log):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        connection.request(
            "POST",
            f"/mcp?access_token={SECRET}&user={PERSON}",
            body=json.dumps(body),
            headers={
                "Host": f"{fresh_tenant.slug}.localhost",
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
            },
        )
        response = connection.getresponse()
        response.read()
        assert response.status == 401  # the query is no credential: the gateway asks for a bearer token

        def served(spans) -> list:
            return [s for s in spans if s.kind == SERVER and s.name.startswith("POST /mcp")]

        spans = receiver.wait_for(lambda spans: served(spans))
    carried = {
        (span.name, key): value
        for span in spans
        for key, value in span.attributes.items()
        if isinstance(value, str) and (SECRET in value or PERSON in value)
    }
    assert not carried, f"the /mcp request's query string is on its spans: {carried}"
