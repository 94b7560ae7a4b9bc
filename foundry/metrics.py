"""Prometheus metrics: model tokens and cost by tenant, provider, model and kind, and the rate
limiter's refusals by tenant and surface, served at /metrics on the platform's host only.

/metrics answers only a request bearing FOUNDRY_METRICS_TOKEN (compared in constant time); with
no token configured it does not exist (404), and tenant hosts never route it.

Tokens are counted where model calls happen — in Celery workers — and served by the web process,
so processes share their counters through files (prometheus_client's multiprocess mode): with
FOUNDRY_METRICS_DIR set (bin/dev: .data/metrics; the compose file: a volume the web, mcp and
worker containers share), each host writes in a directory of its own inside it (settings.py sets
PROMETHEUS_MULTIPROC_DIR; process ids of two containers never meet), and the scrape sums every
file under FOUNDRY_METRICS_DIR. Without it, a process serves its own counters.

`tenant` is the tenant's schema name (its slug): bounded by the number of tenants; `model` by the
price list and providers' model names.
"""

import glob
import hmac
import os

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, generate_latest, multiprocess

MODEL_TOKENS = Counter(
    "foundry_model_tokens",
    "Tokens of model calls recorded in the usage ledger, by kind (input, output, cached).",
    ["tenant", "provider", "model", "kind"],
)
MODEL_CALLS = Counter(
    "foundry_model_calls", "Model calls recorded in the usage ledger.", ["tenant", "provider", "model", "priced"]
)
MODEL_COST = Counter(
    "foundry_model_cost_usd", "USD of model calls, priced when recorded.", ["tenant", "provider", "model"]
)
RATE_LIMITED = Counter(
    "foundry_rate_limit_rejections",
    "Requests and runs the rate limiter refused, by surface (api, mcp, console, login, run).",
    ["tenant", "surface"],
)


def usage_counted(*, record, schema: str, **_kwargs) -> None:
    """`usage_recorded` receiver: count a model call written to the ledger."""
    labels = (schema, record.provider, record.model)
    for kind in ("input", "output", "cached"):
        amount = getattr(record, f"{kind}_tokens") or 0
        if amount:
            MODEL_TOKENS.labels(*labels, kind).inc(amount)
    MODEL_CALLS.labels(*labels, "yes" if record.cost_usd is not None else "no").inc()
    if record.cost_usd:
        MODEL_COST.labels(*labels).inc(float(record.cost_usd))


def rate_limited(tenant: str, surface: str) -> None:
    RATE_LIMITED.labels(tenant or "-", surface).inc()


class _FilesCollector:
    """Every process's counters, from the files under FOUNDRY_METRICS_DIR (any depth)."""

    def __init__(self, root: str):
        self.root = root

    def collect(self):
        files = glob.glob(os.path.join(self.root, "**", "*.db"), recursive=True)
        return multiprocess.MultiProcessCollector.merge(files, accumulate=True)


def _registry():
    root = settings.FOUNDRY_METRICS_DIR
    if root:
        registry = CollectorRegistry()
        registry.register(_FilesCollector(root))
        return registry
    return REGISTRY


def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.FOUNDRY_METRICS_TOKEN
    if not token:
        raise Http404
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        response = HttpResponse("A bearer token is required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
