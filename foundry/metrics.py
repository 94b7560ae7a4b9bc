"""Prometheus metrics, served at /metrics on the platform's host only:
- requests: `foundry_http_requests_total{route,method,status}` and the duration histogram
  `foundry_http_request_duration_seconds{route,method}` — by route template, never by tenant
  (routes x statuses x tenants would be unbounded; per-tenant traffic is in the traces);
- runs: `foundry_runs_finished_total{tenant,outcome}` and `foundry_run_duration_seconds{outcome}`;
- Celery queues: `foundry_queue_depth{queue}`, read from the broker at each scrape;
- model tokens and cost by tenant, provider, model and kind, and the rate limiter's refusals by
  tenant and surface.

/metrics answers only a request bearing FOUNDRY_METRICS_TOKEN (compared in constant time); with
no token configured it does not exist (404), and tenant hosts never route it.

Tokens are counted where model calls happen — in Celery workers — and served by the web process,
so processes share their counters through files (prometheus_client's multiprocess mode): with
FOUNDRY_METRICS_DIR set (bin/dev: .data/metrics; the compose file: a volume the web, mcp and
worker containers share), each host writes in a directory of its own inside it (settings.py sets
PROMETHEUS_MULTIPROC_DIR; process ids of two containers never meet), and the scrape sums every
file under FOUNDRY_METRICS_DIR. Without it, a process serves its own counters. The files of
processes that have ended are folded into one per kind and directory (foundry/metrics_fold.py).

`tenant` is the tenant's slug (`tenant_label`): bounded by the number of tenants; `model` by the
price list: a call of a model the price list does not have counts as `unpriced` (workspaces name
their models freely, in manifests: their names would make the series unbounded; the ledger and
the traces keep every name).
"""

import glob
import hmac
import os
import time

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from foundry.metrics_fold import files_locked

MODEL_TOKENS = Counter(
    "foundry_model_tokens",
    "Tokens of model calls recorded in the usage ledger, by kind (input, output, cached, cache_write).",
    ["tenant", "provider", "model", "kind"],
)
MODEL_CALLS = Counter(
    "foundry_model_calls", "Model calls recorded in the usage ledger.", ["tenant", "provider", "model", "priced"]
)
MODEL_COST = Counter(
    "foundry_model_cost_usd", "USD of model calls, priced when recorded.", ["tenant", "provider", "model"]
)
HTTP_REQUESTS = Counter(
    "foundry_http_requests", "HTTP requests answered, by route template.", ["route", "method", "status"]
)
HTTP_DURATION = Histogram(
    "foundry_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RUNS_FINISHED = Counter("foundry_runs_finished", "Runs ended, by outcome.", ["tenant", "outcome"])
RUN_DURATION = Histogram(
    "foundry_run_duration_seconds",
    "Time from a run's creation to its end, by outcome.",
    ["outcome"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)
RATE_LIMITED = Counter(
    "foundry_rate_limit_rejections",
    "Requests and runs the rate limiter refused, by surface (api, mcp, console, git, login, run).",
    ["tenant", "surface"],
)


# `input` counts every prompt token; `cached` and `cache_write` are parts of it (read from and
# written to the provider's prompt cache), so the kinds are not summed into a total.
TOKEN_KINDS = ("input", "output", "cached", "cache_write")
UNPRICED = "unpriced"  # the `model` label of calls of models the price list does not have


def tenant_label(schema: str) -> str:
    """The `tenant` label of a workspace: its slug (as spans and log lines name it), from its schema
    name (slugs never hold "_", so the schema name maps back exactly)."""
    return schema.replace("_", "-") if schema else "-"


def usage_counted(*, record, schema: str, **_kwargs) -> None:
    """`usage_recorded` receiver: count a model call written to the ledger."""
    labels = (tenant_label(schema), record.provider, record.model if record.cost_usd is not None else UNPRICED)
    for kind in TOKEN_KINDS:
        amount = getattr(record, f"{kind}_tokens") or 0
        if amount:
            MODEL_TOKENS.labels(*labels, kind).inc(amount)
    MODEL_CALLS.labels(*labels, "yes" if record.cost_usd is not None else "no").inc()
    if record.cost_usd:
        MODEL_COST.labels(*labels).inc(float(record.cost_usd))


def rate_limited(tenant: str, surface: str) -> None:
    RATE_LIMITED.labels(tenant_label(tenant), surface).inc()


def run_finished(*, tenant: str, outcome: str, seconds: float | None) -> None:
    RUNS_FINISHED.labels(tenant_label(tenant), outcome).inc()
    if seconds is not None and seconds >= 0:
        RUN_DURATION.labels(outcome).observe(seconds)


class RequestMetricsMiddleware:
    """Counts and times every request by its route template ("unmatched" when none matched)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        if match is not None:
            route = match.route or match.view_name or "unmatched"
        else:  # answered before URL resolution: the health probes by name, anything else unmatched
            route = request.path.lstrip("/") if request.path in _PROBES else "unmatched"
        request_observe(route, request.method, response.status_code, time.perf_counter() - started)
        return response


def request_observe(route: str, method: str, status: int, seconds: float) -> None:
    """Count and time one answered request (Django's, and /mcp's, which is not Django's)."""
    method = method if method in _METHODS else "other"
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_DURATION.labels(route, method).observe(seconds)


_PROBES = frozenset({"/healthz", "/readyz"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _QueueDepthCollector:
    """The length of each Celery queue in the Redis broker, read when scraped."""

    def collect(self):
        from foundry.health import queue_depths

        depths = queue_depths()
        if depths is None:
            return  # the broker is away: no figure rather than a wrong one (/readyz says so)
        family = GaugeMetricFamily("foundry_queue_depth", "Tasks waiting in a Celery queue.", labels=["queue"])
        for queue, depth in depths.items():
            family.add_metric([queue], depth)
        yield family


class _FilesCollector:
    """Every process's counters, from the files under FOUNDRY_METRICS_DIR (any depth)."""

    def __init__(self, root: str):
        self.root = root

    def collect(self):
        with files_locked(self.root, exclusive=False):  # no fold moves figures meanwhile (metrics_fold.py)
            files = glob.glob(os.path.join(self.root, "**", "*.db"), recursive=True)
            return multiprocess.MultiProcessCollector.merge(files, accumulate=True)


def registry_for_scrape():
    """Every process's counters and the queues' depth, as /metrics serves them."""
    return _registry()


def _registry():
    registry = CollectorRegistry()
    root = settings.FOUNDRY_METRICS_DIR
    if root:
        registry.register(_FilesCollector(root))
    else:
        registry.register(_ProcessCollector())
    registry.register(_QueueDepthCollector())
    return registry


class _ProcessCollector:
    """This process's own metrics (no FOUNDRY_METRICS_DIR)."""

    def collect(self):
        return REGISTRY.collect()


def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.FOUNDRY_METRICS_TOKEN
    if not token:
        raise Http404  # not served at all: whatever the method
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        response = HttpResponse("A bearer token is required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
