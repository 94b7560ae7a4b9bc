"""Observability at the edges (PRODUCT.md "Observability": every request and task is a span
carrying `tenant.id`; docs/observability.md "Traces" and "Logs"): refusals of a suspended
workspace, tasks given a tenant's id, a body streamed after the request's middleware returned."""

import pytest
from opentelemetry.trace import SpanKind

from tests.conftest import client_for
from tests.foundry.conftest import SPAN_PROVIDER
from tests.foundry.test_logs import json_log_lines, of_logger


@pytest.fixture
def suspended_acme(acme, django_capture_on_commit_callbacks):
    from apps.tenants.services import tenant_suspend

    with django_capture_on_commit_callbacks(execute=True):
        tenant_suspend(tenant=acme)
    return acme


def test_a_request_refused_for_a_suspended_workspace_is_a_span_carrying_its_tenant(suspended_acme, chain_spans):
    """A suspended workspace's host is known (its route names the tenant), and /mcp traces the same
    refusal with its tenant: Django's 403 is a server span of that tenant too. TenantRoutingMiddleware
    answered it before ServerSpanMiddleware ran: no span at all."""
    response = client_for(suspended_acme).get("/api/v1/agents")
    assert response.status_code == 403 and b"tenant_suspended" in response.content
    servers = [s for s in chain_spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert len(servers) == 1, f"{len(servers)} server spans for the suspended workspace's request"
    assert servers[0].attributes.get("tenant.id") == suspended_acme.pk


def test_a_suspended_workspaces_refusal_is_logged_with_its_tenant(suspended_acme):
    """docs/observability.md "Logs": `tenant` is the slug of the workspace the request acts for (null
    only on the platform's host). The 403 for a suspended workspace was logged (`django.request`)
    with `tenant: null`: the router returned before setting `request.tenant`."""
    with json_log_lines() as lines:
        response = client_for(suspended_acme).get("/api/v1/agents")
    assert response.status_code == 403
    [line] = of_logger(lines, "django.request")
    assert line["tenant"] == suspended_acme.slug


def _tenant_seen_by_spans_inside(monkeypatch, module, name):
    """Replace `module.name` (what the task calls) by a stub that starts a span, as the work's
    psycopg/httpx spans would; return the list the span's attributes go into."""
    seen = []
    tracer = SPAN_PROVIDER.get_tracer("test")

    def stub(*args, **kwargs):
        with tracer.start_as_current_span("work") as span:
            seen.append(dict(span.attributes))
        return 0

    monkeypatch.setattr(module, name, stub)
    return seen


def test_a_tenants_usage_rollup_task_spans_carry_its_tenant(acme, monkeypatch):
    """`billing.rollup_tenant(tenant_id, day)` works for one tenant (suspended ones too, so it is no
    TenantTask): its span and every span under it (its SQL) carry `tenant.id`. It used to enter no
    `tenant_bound`."""
    from apps.billing import tasks

    seen = _tenant_seen_by_spans_inside(monkeypatch, tasks, "usage_rollup")
    with SPAN_PROVIDER.get_tracer("test").start_as_current_span("run/billing.rollup_tenant") as task_span:
        tasks.usage_rollup_tenant.apply(args=(acme.pk, "2026-12-01")).get()
    assert seen and seen[0].get("tenant.id") == acme.pk
    assert task_span.attributes.get("tenant.id") == acme.pk


def test_a_sinks_delivery_task_spans_carry_its_tenant(acme, monkeypatch):
    """`audit.deliver_sink(tenant_id, sink_id)` delivers one tenant's audit events to its SIEM
    (webhook/syslog: httpx spans, SQL spans): its spans carry `tenant.id` and its log lines
    `tenant`. It used to enter no `tenant_bound`."""
    from apps.audit import delivery

    seen = _tenant_seen_by_spans_inside(monkeypatch, delivery, "sink_deliver")
    monkeypatch.setattr(delivery, "sink_deliver", _returns_status(delivery.sink_deliver))  # the task reads `.status`
    from apps.audit import tasks

    with SPAN_PROVIDER.get_tracer("test").start_as_current_span("run/audit.deliver_sink") as task_span:
        tasks.audit_deliver_sink.apply(args=(acme.pk, 1)).get()
    assert seen and seen[0].get("tenant.id") == acme.pk
    assert task_span.attributes.get("tenant.id") == acme.pk


def _returns_status(stub):
    class _Delivery:
        status = "idle"

    def wrapped(**kwargs):
        stub(**kwargs)
        return _Delivery()

    return wrapped


def test_a_tenant_task_refused_for_a_suspended_workspace_names_its_tenant(suspended_acme):
    """A TenantTask refused because its workspace is suspended (`runs.execute` of a run queued
    before the suspension, an export, a retention pass) names its tenant on its span and error log
    line: TenantUnavailable used to be raised before `tenant_bound` was entered."""
    from apps.lifecycle import tasks
    from foundry.celery import TenantUnavailable

    tracer = SPAN_PROVIDER.get_tracer("test")
    with (
        tracer.start_as_current_span("run/lifecycle.apply_retention_tenant") as task_span,
        pytest.raises(TenantUnavailable),
    ):
        tasks.apply_retention_tenant.apply(args=(suspended_acme.schema_name,)).get()
    assert task_span.attributes.get("tenant.id") == suspended_acme.pk


def test_the_audit_exports_streamed_reads_are_spans_of_its_tenant_and_request(acme, chain_spans, monkeypatch):
    """GET /api/v1/audit/export streams the chain, reading each batch from the database while the
    body is sent (a StreamingHttpResponse over `export_lines`), after ServerSpanMiddleware ended
    the request's span and TenantRoutingMiddleware left `tenant_bound`: each chunk is generated
    with both back (foundry/telemetry.py `streamed_within`). Every query of the export used to be
    a root trace of its own with no `tenant.id`."""
    from apps.audit import export
    from tests.api.conftest import api, issue

    real, seen = export.export_batches, []
    tracer = SPAN_PROVIDER.get_tracer("test")

    def traced_batches(*args, **kwargs):
        for rows in real(*args, **kwargs):
            with tracer.start_as_current_span("SELECT audit_event") as span:  # as psycopg's span would be
                seen.append(span)
            yield rows

    monkeypatch.setattr(export, "export_batches", traced_batches)
    response = api(acme, issue(acme, scopes=("read",))).get("/api/v1/audit/export")
    assert response.status_code == 200
    b"".join(response.streaming_content)  # as the WSGI server sends it, after the middleware returned
    assert seen, "the export read no batch"
    assert seen[0].attributes.get("tenant.id") == acme.pk
