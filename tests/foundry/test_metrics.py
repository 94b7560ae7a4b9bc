"""/metrics: Prometheus counters of model tokens and cost per tenant, served only on the platform's
host and only to a request bearing the metrics token."""

import os
import subprocess
import sys
from decimal import Decimal

from django.test import Client
from django_tenants.utils import schema_context
from prometheus_client import REGISTRY

from apps.billing.models import Price
from apps.runs.usage import usage_record
from tests.conftest import ROOT, client_for

TOKEN = "metrics-token-for-tests-0123456789"


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_model_calls_are_counted_by_tenant_model_and_kind(acme, globex, settings):
    settings.FOUNDRY_METRICS_TOKEN = TOKEN
    Price.objects.create(provider="scripted", model="metered", input_per_mtok=Decimal("1000"),
                         output_per_mtok=Decimal("1000"), cached_per_mtok=Decimal(0),
                         effective_from="2020-01-01T00:00Z", created_by="test")  # fmt: skip
    labels = {"tenant": "acme", "provider": "scripted", "model": "metered"}
    before = {kind: sample("foundry_model_tokens_total", **labels, kind=kind) for kind in ("input", "output")}
    cost_before = sample("foundry_model_cost_usd_total", **labels)
    globex_before = sample("foundry_model_tokens_total", **{**labels, "tenant": "globex"}, kind="input")
    with schema_context("acme"):
        usage_record(tenant_id=acme.pk, project="p", agent="a", run_id=None, step=None, provider="scripted",
                     model="metered", input_tokens=300, output_tokens=200)  # fmt: skip
    assert sample("foundry_model_tokens_total", **labels, kind="input") - before["input"] == 300
    assert sample("foundry_model_tokens_total", **labels, kind="output") - before["output"] == 200
    assert round(sample("foundry_model_cost_usd_total", **labels) - cost_before, 6) == 0.5
    assert sample("foundry_model_tokens_total", **{**labels, "tenant": "globex"}, kind="input") == globex_before

    scraped = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").get("/metrics")
    assert scraped.status_code == 200 and scraped["Content-Type"].startswith("text/plain")
    text = scraped.content.decode()
    assert 'foundry_model_tokens_total{kind="input",model="metered",provider="scripted",tenant="acme"}' in text
    # A name no price list has (a manifest may say anything) mints no series of its own.
    with schema_context("acme"):
        usage_record(tenant_id=acme.pk, project="p", agent="a", run_id=None, step=None, provider="scripted",
                     model="made-up-7f3a", input_tokens=5, output_tokens=5)  # fmt: skip
    text = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").get("/metrics").content.decode()
    assert "made-up-7f3a" not in text and 'model="unpriced",provider="scripted",tenant="acme"' in text
    assert "foundry_rate_limit_rejections_total" in text or "foundry_rate_limit_rejections" in text


def test_metrics_need_the_token_and_the_platform_host(acme, settings):
    settings.FOUNDRY_METRICS_TOKEN = ""
    assert Client(HTTP_HOST="localhost").get("/metrics").status_code == 404  # no token configured: none
    settings.FOUNDRY_METRICS_TOKEN = TOKEN
    assert Client(HTTP_HOST="localhost").get("/metrics").status_code == 401
    wrong = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION="Bearer not-the-token").get("/metrics")
    assert wrong.status_code == 401 and wrong["WWW-Authenticate"].startswith("Bearer")
    # A tenant's host has no /metrics, whoever asks and whatever they bear.
    tenant = Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert tenant.get("/metrics").status_code == 404
    assert client_for(acme, "owner@acme.test").get("/metrics").status_code == 404


def test_the_scrape_sums_the_counters_of_other_processes(tmp_path, settings):
    """A Celery worker counts the tokens, the web process serves them: through the counter files
    of every host under FOUNDRY_METRICS_DIR."""
    settings.FOUNDRY_METRICS_TOKEN = TOKEN
    settings.FOUNDRY_METRICS_DIR = str(tmp_path)
    script = (
        "from types import SimpleNamespace as N; from foundry.metrics import usage_counted;"
        "usage_counted(record=N(provider='p', model='m', input_tokens=7, output_tokens=3, cached_tokens=0,"
        " cache_write_tokens=0, cost_usd=None), schema='acme')"
    )
    for host in ("worker-a", "worker-b"):  # two containers, whose process ids may well be the same
        (tmp_path / host).mkdir()
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / host)}
        subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, check=True, timeout=60)
    text = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").get("/metrics").content.decode()
    # "m" has no price: counted as `unpriced` (a workspace's own model names would be unbounded).
    assert 'foundry_model_tokens_total{kind="input",model="unpriced",provider="p",tenant="acme"} 14.0' in text
    assert 'foundry_model_calls_total{model="unpriced",priced="no",provider="p",tenant="acme"} 2.0' in text


def test_rate_limit_refusals_are_counted_by_tenant_and_surface(acme, globex):
    from django.core.management import call_command

    from apps.tenants.limits import limits_cache_clear
    from tests.api.conftest import api, issue

    call_command("tenant_limits", "acme", "--requests-per-second", "1", "--burst", "1")
    limits_cache_clear()
    try:
        before = sample("foundry_rate_limit_rejections_total", tenant="acme", surface="api")
        other = sample("foundry_rate_limit_rejections_total", tenant="globex", surface="api")
        client = api(acme, issue(acme))
        assert [client.get("/api/v1/workspace").status_code for _ in range(3)] == [200, 429, 429]
        assert sample("foundry_rate_limit_rejections_total", tenant="acme", surface="api") - before == 2
        assert sample("foundry_rate_limit_rejections_total", tenant="globex", surface="api") == other
    finally:
        limits_cache_clear()


def test_requests_runs_and_queues_are_measured(acme, settings, django_capture_on_commit_callbacks):
    from django_tenants.utils import schema_context

    from apps.runs.models import Run
    from tests.api.conftest import api, issue
    from tests.runs.conftest import FINANCE, TRIAGE, advance, deploy
    from tests.runs.test_engine import start

    settings.FOUNDRY_METRICS_TOKEN = TOKEN
    route = {"route": "api/v1/workspace", "method": "GET"}
    before = sample("foundry_http_requests_total", **route, status="200")
    timed = sample("foundry_http_request_duration_seconds_count", **route)
    assert api(acme, issue(acme)).get("/api/v1/workspace").status_code == 200
    assert sample("foundry_http_requests_total", **route, status="200") - before == 1
    assert sample("foundry_http_request_duration_seconds_count", **route) - timed == 1
    unmatched = sample("foundry_http_requests_total", route="unmatched", method="GET", status="404")
    api(acme).get("/no/such/page")
    assert sample("foundry_http_requests_total", route="unmatched", method="GET", status="404") - unmatched == 1
    probes = sample("foundry_http_requests_total", route="healthz", method="GET", status="200")
    Client(HTTP_HOST="10.0.0.1").get("/healthz")  # a load balancer's probe, by address
    assert sample("foundry_http_requests_total", route="healthz", method="GET", status="200") - probes == 1

    finished = sample("foundry_runs_finished_total", tenant="acme", outcome="succeeded")
    with django_capture_on_commit_callbacks(execute=True):  # a run's end is counted once committed
        run = advance(start(acme, deploy(acme, FINANCE, TRIAGE), "Triage invoice INV-1001."), "acme")
    assert run.status == Run.Status.SUCCEEDED
    assert sample("foundry_runs_finished_total", tenant="acme", outcome="succeeded") - finished == 1
    with schema_context("public"):
        text = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").get("/metrics").content.decode()
    assert 'foundry_queue_depth{queue="celery"}' in text
    assert "foundry_run_duration_seconds_bucket" in text
    # Request metrics carry no tenant: bounded by routes, methods and statuses only.
    assert not any("tenant=" in line for line in text.splitlines() if line.startswith("foundry_http_"))


def test_the_same_figures_are_pushed_over_otlp_by_the_bridge(acme, monkeypatch):
    """The bridge (foundry/metrics_otlp.py) on a meter provider of the test's own, read in memory."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from foundry import metrics_otlp
    from foundry.metrics_otlp import metrics_bridge

    monkeypatch.setattr(metrics_otlp, "_snapshot", (float("-inf"), {}))  # no collection of an earlier test

    reader = InMemoryMetricReader()
    metrics_bridge(MeterProvider(metric_readers=[reader]).get_meter("test"))
    Price.objects.create(provider="scripted", model="bridged", input_per_mtok=Decimal(1), output_per_mtok=Decimal(1),
                         cached_per_mtok=Decimal(0), effective_from="2020-01-01T00:00Z", created_by="test")  # fmt: skip
    with schema_context("acme"):
        usage_record(tenant_id=acme.pk, project="p", agent="a", run_id=None, step=None, provider="scripted",
                     model="bridged", input_tokens=41, output_tokens=1)  # fmt: skip
    points = {
        (metric.name, tuple(sorted(point.attributes.items()))): point.value
        for resource in reader.get_metrics_data().resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
    }
    labels = (("kind", "input"), ("model", "bridged"), ("provider", "scripted"), ("tenant", "acme"))
    assert points[("foundry.model.tokens", labels)] == 41
    assert points[("foundry.model.tokens", (("kind", "output"), *labels[1:]))] == 1
    assert ("foundry.queue.depth", (("queue", "celery"),)) in points


def test_the_counter_files_of_ended_processes_are_folded_and_the_sums_stay(tmp_path, settings, monkeypatch):
    """Each process writes counter files of its own; nothing deleted them when it ended, so every
    gunicorn worker recycled and every Celery worker restarted left more for each scrape to read.
    The files of ended processes are added into one archive file per kind and deleted (the
    gunicorn master's `child_exit`, each Celery worker process as it starts): the scrape shows
    the same sums; a live process's files stay."""
    import runpy
    import socket

    from foundry.metrics_fold import metrics_directory

    settings.FOUNDRY_METRICS_TOKEN = TOKEN
    settings.FOUNDRY_METRICS_DIR = str(tmp_path)
    host = tmp_path / socket.gethostname()
    host.mkdir()
    script = (
        "import sys; from types import SimpleNamespace as N; from foundry.metrics import HTTP_DURATION, usage_counted;"
        "usage_counted(record=N(provider='p', model='m', input_tokens=int(sys.argv[1]), output_tokens=3,"
        " cached_tokens=0, cache_write_tokens=0, cost_usd=None), schema='acme');"
        "HTTP_DURATION.labels(route='r', method='GET').observe(0.2)"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(host)}
    for tokens in (7, 5, 11):  # three processes, ended
        subprocess.run([sys.executable, "-c", script, str(tokens)], env=env, cwd=ROOT, check=True, timeout=60)
    # A fourth, whose files are given this process's id: alive, they are not folded.
    ended = set(host.iterdir())
    subprocess.run([sys.executable, "-c", script, "100"], env=env, cwd=ROOT, check=True, timeout=60)
    live = []
    for path in set(host.iterdir()) - ended:
        live.append(path.rename(host / f"{path.name.split('_')[0]}_{os.getpid()}.db").name)

    def scrape() -> list[str]:
        text = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").get("/metrics").content.decode()
        return sorted(line for line in text.splitlines() if line.startswith(("foundry_model_", "foundry_http_")))

    before = scrape()
    assert 'foundry_model_tokens_total{kind="input",model="unpriced",provider="p",tenant="acme"} 123.0' in before
    assert 'foundry_http_request_duration_seconds_count{method="GET",route="r"} 4.0' in before
    assert len(list(host.glob("*_[0-9]*.db"))) == 8  # 4 processes x (counter, histogram)

    hooks = runpy.run_path(str(ROOT / "foundry" / "gunicorn.conf.py"))
    monkeypatch.setenv("FOUNDRY_METRICS_DIR", str(tmp_path))  # the gunicorn master has the environment only
    assert metrics_directory() == str(host)
    hooks["child_exit"](None, None)  # as the master calls it when a worker has exited

    assert sorted(p.name for p in host.glob("*.db")) == sorted(["counter_archive.db", "histogram_archive.db", *live])
    assert scrape() == before
