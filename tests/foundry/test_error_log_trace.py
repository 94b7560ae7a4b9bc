"""A returned 4xx is logged (`ErrorResponseLogMiddleware`) with the trace and span ids of its
server span, though that span has ended by then (docs/observability.md, "Logs")."""

from opentelemetry.trace import SpanKind

from tests.api.conftest import api, issue
from tests.foundry.test_logs import json_log_lines, of_logger


def test_a_returned_404_is_logged_with_the_trace_of_its_server_span(acme, chain_spans):
    client = api(acme, issue(acme))
    with json_log_lines() as lines:
        response = client.get("/api/v1/runs/x", HTTP_X_REQUEST_ID="req-review-obs-1")
    assert response.status_code == 404
    [span] = [s for s in chain_spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    [line] = of_logger(lines, "django.request")
    assert line["request_id"] == "req-review-obs-1" and line["tenant"] == "acme"
    # The documented promise: the line joins to the request's trace.
    assert line["trace_id"] == f"{span.context.trace_id:032x}", (
        f"the django.request line of a traced request has trace_id={line['trace_id']!r}: "
        "ErrorResponseLogMiddleware logs after ServerSpanMiddleware has ended the span"
    )
