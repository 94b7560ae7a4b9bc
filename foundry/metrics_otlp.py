"""The platform's Prometheus counters (foundry/metrics.py), also pushed over OTLP when configured.

Counters live in prometheus_client, summed across processes through FOUNDRY_METRICS_DIR; this
bridge reads the same sums and reports them as OpenTelemetry observable instruments, so an OTLP
backend gets exactly what /metrics serves. Exactly one process per deployment must push (each
would report the same sums): Celery beat does (`beat_init`, foundry/celery.py), when
OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT) is set and OTEL_SDK_DISABLED
is not; every OTEL_METRIC_EXPORT_INTERVAL (default 60 s).

Counters become cumulative OTLP sums (`foundry_model_tokens_total` → `foundry.model.tokens`),
gauges stay gauges (`foundry_queue_depth` → `foundry.queue.depth`); histograms are sent as their
`_count` and `_sum` sums (OpenTelemetry has no observable histogram).
"""

import logging
import math
import os
import time

from opentelemetry.metrics import CallbackOptions, Observation

logger = logging.getLogger(__name__)


_snapshot: tuple[float, dict[str, list[Observation]]] = (-math.inf, {})
_SNAPSHOT_SECONDS = 1.0


def _samples(name: str) -> list[Observation]:
    """The sample `name`'s observations from one collection shared by every instrument of an
    export (reading every process's files and the broker once, not once per instrument)."""
    global _snapshot
    taken, samples = _snapshot
    if time.monotonic() - taken > _SNAPSHOT_SECONDS:
        from foundry.metrics import registry_for_scrape

        samples = {}
        for family in registry_for_scrape().collect():
            for sample in family.samples:
                samples.setdefault(sample.name, []).append(Observation(sample.value, dict(sample.labels)))
        _snapshot = (time.monotonic(), samples)
    return samples.get(name, [])


def _instrument(meter, sample_name: str, kind: tuple[str, ...], description: str) -> None:
    otel_name = sample_name.removesuffix("_total").replace("_", ".")

    def observe(_options: CallbackOptions) -> list[Observation]:
        return _samples(sample_name)

    if kind == ("gauge",):
        meter.create_observable_gauge(otel_name, callbacks=[observe], description=description)
    else:
        meter.create_observable_counter(otel_name, callbacks=[observe], description=description)


# (the sample's name in the Prometheus exposition, the family types it comes from, description)
BRIDGED = [
    ("foundry_model_tokens_total", ("counter",), "Tokens of model calls, by tenant, provider, model and kind."),
    ("foundry_model_calls_total", ("counter",), "Model calls, by tenant, provider, model and priced."),
    ("foundry_model_cost_usd_total", ("counter",), "USD of model calls, by tenant, provider and model."),
    ("foundry_rate_limit_rejections_total", ("counter",), "Rate-limit refusals, by tenant and surface."),
    ("foundry_runs_finished_total", ("counter",), "Runs ended, by tenant and outcome."),
    ("foundry_http_requests_total", ("counter",), "HTTP requests, by route template, method and status."),
    ("foundry_http_request_duration_seconds_count", ("histogram",), "HTTP requests timed, by route and method."),
    ("foundry_http_request_duration_seconds_sum", ("histogram",), "Seconds spent answering, by route and method."),
    ("foundry_run_duration_seconds_count", ("histogram",), "Runs ended and timed, by outcome."),
    ("foundry_run_duration_seconds_sum", ("histogram",), "Seconds from creation to end of runs, by outcome."),
    ("foundry_queue_depth", ("gauge",), "Tasks waiting in a Celery queue."),
]


def metrics_bridge(meter) -> None:
    """Register every bridged metric on `meter` (an OpenTelemetry Meter)."""
    for sample_name, kind, description in BRIDGED:
        _instrument(meter, sample_name, kind, description)


def metrics_export_setup() -> bool:
    """In the one process that pushes (Celery beat): an OTLP metric exporter; True if on."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")):
        return False
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "foundry-beat"})
    provider = MeterProvider(resource=resource, metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())])
    metrics_bridge(provider.get_meter("foundry"))
    logger.info("telemetry: pushing the platform's metrics over OTLP")
    return True
