"""A run remembers the trace of the request that started it: recorded by `run_create`, shown on
the run page with a link to the trace viewer (FOUNDRY_TRACE_URL_TEMPLATE), returned by the API;
never visible to another tenant.

Spans come from a tracer provider of the test's own: the global one (foundry/telemetry.py) would
instrument every test after this one."""

import subprocess
import sys

from django_tenants.utils import schema_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from apps.runs.models import Run
from tests.conftest import ROOT, client_for, server_env
from tests.runs.conftest import FINANCE, TRIAGE, deploy
from tests.runs.test_api import SMALL, client, make_run, post

tracer = TracerProvider().get_tracer("tests.runs")
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
GRAFANA = 'http://localhost:3000/explore?left={"datasource":"tempo","queries":[{"query":"{trace_id}"}]}'


def test_a_run_started_inside_a_span_records_its_trace(acme, triage):
    with tracer.start_as_current_span("request") as span:
        response = post(client(acme), "/api/v1/runs", {"agent": "invoice-triage", "input": SMALL})
    assert response.status_code == 201, response.content
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert response.json()["trace_id"] == trace_id
    with schema_context("acme"):
        assert Run.objects.get(pk=response.json()["id"]).trace_id == trace_id
    assert client(acme).get(f"/api/v1/runs/{response.json()['id']}").json()["trace_id"] == trace_id


def test_a_run_started_outside_any_trace_records_none(acme, triage):
    response = post(client(acme), "/api/v1/runs", {"agent": "invoice-triage", "input": SMALL})
    assert response.status_code == 201
    assert response.json()["trace_id"] == ""


def test_a_trace_that_is_not_sampled_is_not_recorded(acme, triage):
    """Its spans are exported nowhere: a link to it would show nothing."""
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("tests.runs")
    with unsampled.start_as_current_span("request") as span:
        response = post(client(acme), "/api/v1/runs", {"agent": "invoice-triage", "input": SMALL})
    assert span.get_span_context().is_valid
    assert response.json()["trace_id"] == ""


def test_the_run_page_shows_the_trace_id_and_links_to_the_viewer(acme, triage, settings):
    settings.FOUNDRY_TRACE_URL_TEMPLATE = GRAFANA
    run = make_run(acme, triage, trace_id=TRACE)
    html = client_for(acme, "viewer@acme.test").get(f"/runs/{run.pk}/").content.decode()
    assert f"<code>{TRACE}</code>" in html
    link = GRAFANA.replace("{trace_id}", TRACE).replace('"', "&quot;")
    assert f'<a href="{link}" target="_blank" rel="noopener noreferrer" data-testid="run-trace-link">' in html


def test_without_a_viewer_the_run_page_shows_the_id_and_no_link(acme, triage, settings):
    settings.FOUNDRY_TRACE_URL_TEMPLATE = ""
    run = make_run(acme, triage, trace_id=TRACE)
    html = client_for(acme, "viewer@acme.test").get(f"/runs/{run.pk}/").content.decode()
    assert f"<code>{TRACE}</code>" in html
    assert "run-trace-link" not in html


def test_a_run_without_a_trace_shows_no_trace(acme, triage, settings):
    settings.FOUNDRY_TRACE_URL_TEMPLATE = GRAFANA
    run = make_run(acme, triage)
    html = client_for(acme, "viewer@acme.test").get(f"/runs/{run.pk}/").content.decode()
    assert 'data-testid="run-trace"' not in html and "localhost:3000" not in html


def test_another_tenant_sees_neither_the_run_nor_its_trace(acme, globex, triage, settings):
    settings.FOUNDRY_TRACE_URL_TEMPLATE = GRAFANA
    theirs = make_run(globex, deploy(globex, FINANCE, TRIAGE), trace_id=TRACE)
    mine = make_run(acme, triage)
    page = client_for(acme, "owner@acme.test").get(f"/runs/{theirs.pk}/")
    assert page.status_code == 404 and TRACE not in page.content.decode()
    listed = client(acme).get("/api/v1/runs")
    assert [r["id"] for r in listed.json()["runs"]] == [str(mine.pk)]
    assert TRACE not in listed.content.decode()
    detail = client(acme).get(f"/api/v1/runs/{theirs.pk}")
    assert detail.status_code == 404 and TRACE not in detail.content.decode()
    # Its own tenant sees it.
    assert client(globex).get(f"/api/v1/runs/{theirs.pk}").json()["trace_id"] == TRACE


def test_a_trace_url_template_that_is_not_an_http_url_with_the_id_is_refused_at_start():
    for template in ("javascript:alert('{trace_id}')", "http://viewer.example/trace"):
        result = subprocess.run(
            [sys.executable, "-c", "import foundry.settings"],
            env=server_env(FOUNDRY_TRACE_URL_TEMPLATE=template),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1
        assert "FOUNDRY_TRACE_URL_TEMPLATE must be an http(s) URL containing {trace_id}." in result.stderr
