"""Structured logs (foundry/logs.py): each line is JSON and carries the request id, the tenant and,
while a span is recorded, the trace and span ids — for requests and for tasks alike.

Spans come from a tracer provider of the test's own: the global one (foundry/telemetry.py) would
instrument every test after this one."""

import copy
import io
import json
import logging
import logging.config
import uuid
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.test import Client
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from foundry.celery import TenantTask, app
from tests.api.conftest import api, issue

tracer = TracerProvider().get_tracer("tests.logs")


@app.task(base=TenantTask, name="tests.log_in_tenant")
def log_in_tenant(schema_name: str) -> None:
    logging.getLogger("tests.worker").warning("working for %s", schema_name)


@contextmanager
def json_log_lines():
    """The lines the production handler (settings.LOGGING: JSON formatter and context filter)
    writes meanwhile, parsed once the block ends; the test settings' own handler prints text."""
    config = logging.config.DictConfigurator(copy.deepcopy(settings.LOGGING))
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(config.configure_formatter(config.config["formatters"]["json"]))
    for name in settings.LOGGING["handlers"]["console"]["filters"]:
        handler.addFilter(config.configure_filter(config.config["filters"][name]))
    root = logging.getLogger()
    root.addHandler(handler)
    lines: list[dict] = []
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        lines.extend(json.loads(line) for line in handler.stream.getvalue().splitlines())


def of_logger(lines: list[dict], name: str) -> list[dict]:
    return [line for line in lines if line["logger"] == name]


def test_it_logs_a_request_as_json_with_its_request_id_tenant_and_trace(acme):
    client = api(acme, issue(acme))
    with json_log_lines() as lines, tracer.start_as_current_span("request") as span:
        response = client.get("/api/v1/runs/not-a-run", HTTP_X_REQUEST_ID="req-logs-0001")
    assert response.status_code == 404
    assert response["X-Request-ID"] == "req-logs-0001"
    [line] = of_logger(lines, "django.request")
    context = span.get_span_context()
    assert line["message"] == "Not Found: /api/v1/runs/not-a-run"
    assert line["level"] == "WARNING"
    assert (line["request_id"], line["tenant"]) == ("req-logs-0001", "acme")
    assert (line["trace_id"], line["span_id"]) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    assert line["timestamp"].endswith("+00:00")


def test_a_request_s_error_response_is_logged_once_inside_its_context(acme):
    """A 400 the view returns (not raises) would be logged by Django after the middleware, with no context."""
    client = api(acme, issue(acme))
    with json_log_lines() as lines:
        response = client.post("/api/v1/runs", "{}", content_type="application/json")
    assert response.status_code == 400
    [line] = of_logger(lines, "django.request")
    assert line["message"] == "Bad Request: /api/v1/runs"
    assert (line["request_id"], line["tenant"]) == (response["X-Request-ID"], "acme")
    assert line["trace_id"] is None and line["span_id"] is None  # no span recorded: no trace


def test_a_request_without_an_id_gets_one_in_its_logs_and_response(acme):
    with json_log_lines() as lines:
        response = api(acme).get("/api/v1/runs", HTTP_X_REQUEST_ID="bad id!")  # malformed: replaced
    assert response.status_code == 401
    request_id = response["X-Request-ID"]
    assert uuid.UUID(request_id).hex == request_id
    [line] = of_logger(lines, "django.request")
    assert (line["request_id"], line["tenant"]) == (request_id, "acme")


@pytest.mark.parametrize("host", ["localhost", "nobody.localhost"])
def test_a_platform_or_unknown_host_request_logs_its_id_and_no_tenant(db, host):
    with json_log_lines() as lines:
        response = Client(HTTP_HOST=host).get("/no-such-page")
    assert response.status_code == 404
    [line] = of_logger(lines, "django.request")
    assert line["tenant"] is None and line["request_id"] == response["X-Request-ID"]


def test_a_task_logs_its_tenant_and_no_request(acme):
    with json_log_lines() as lines, tracer.start_as_current_span("task") as span:
        log_in_tenant.apply(args=["acme"]).get()
    [line] = of_logger(lines, "tests.worker")
    assert line["message"] == "working for acme"
    assert (line["tenant"], line["request_id"]) == ("acme", None)
    assert line["trace_id"] == f"{span.get_span_context().trace_id:032x}"


def test_outside_any_request_span_or_tenant_the_fields_are_null(db):
    with json_log_lines() as lines:
        logging.getLogger("tests.idle").warning("nothing bound")
    [line] = of_logger(lines, "tests.idle")
    assert {key: line[key] for key in ("trace_id", "span_id", "tenant", "request_id")} == dict.fromkeys(
        ("trace_id", "span_id", "tenant", "request_id")
    )
    assert trace.get_current_span().get_span_context().is_valid is False
