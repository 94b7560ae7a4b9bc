"""OpenTelemetry traces: one trace from the browser's request through the API, the Celery task
that runs the agent, each agent step and each model call, every span carrying its tenant.

Set up once per process by `telemetry_setup` — web processes when their application is loaded
(foundry/wsgi.py, foundry/asgi.py: after gunicorn forks its workers), Celery in every forked
worker process (`worker_process_init`: the exporter's thread does not survive a fork) — and
configured only by the standard OTEL_* variables:
- on when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, unless
  OTEL_SDK_DISABLED=true; off, the API's no-op tracer costs nothing;
- OTLP over HTTP (protobuf); OTEL_SERVICE_NAME (default "foundry-<role>"), OTEL_RESOURCE_ATTRIBUTES,
  OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (default: parent-based, always on).
Instrumented: Django (server spans named by route, `ServerSpanMiddleware`), Celery (the trace context travels in the
task's message headers, so the worker's spans join the request's trace), psycopg, Redis, httpx
(http tools' calls and webhook sinks; the model SDKs' httpx2 is not instrumented: a model call's
span is the graph's `chat <model>`).

Tenant: `tenant_bound(id, slug)` binds the tenant for a request (apps/tenants/middleware.py, the
MCP gateway) or a task (foundry/celery.py TenantTask); `TenantSpanProcessor` puts `tenant.id` and
`tenant.slug` on every span started meanwhile — the one place spans learn their tenant. The
binding is a context variable, so concurrent requests in one process never see each other's.

Agent runs (foundry/runtime/graph.py) add a span per step (`agent.step`), per tool call
(`execute_tool <name>`) and per model call (`chat <model>`, OpenTelemetry GenAI conventions:
gen_ai.operation.name, gen_ai.provider.name and gen_ai.system, gen_ai.request.model,
gen_ai.usage.input_tokens / output_tokens). Prompts and completions only where the workspace
allows it (`trace_content`, docs/observability.md; off by default).
"""

import contextlib
import logging
import os
import threading
from contextvars import ContextVar
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode

logger = logging.getLogger(__name__)

_tenant: ContextVar[tuple[int, str] | None] = ContextVar("foundry_telemetry_tenant", default=None)
_setup_lock = threading.Lock()
_set_up = False

tracer = trace.get_tracer("foundry")


@contextlib.contextmanager
def tenant_bound(tenant_id: int | None, slug: str | None):
    """Spans started inside carry this tenant (nothing when `tenant_id` is None)."""
    token = _tenant.set((tenant_id, slug or "") if tenant_id is not None else None)
    if tenant_id is not None:
        # The span already open (the request's, the task's) began before its tenant was known.
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute("tenant.id", tenant_id)
            span.set_attribute("tenant.slug", slug or "")
    try:
        yield
    finally:
        _tenant.reset(token)


@contextlib.contextmanager
def tenant_bound_by_id(tenant_id: int):
    """`tenant_bound` for work given a workspace's id (a task's argument), its slug looked up."""
    from apps.tenants.models import Tenant

    slug = Tenant.objects.filter(pk=tenant_id).values_list("slug", flat=True).first()
    with tenant_bound(tenant_id if tenant_id > 0 else None, slug):
        yield


def streamed_within(response, *, tenant: tuple[int, str] | None = None, span=None):
    """`response`, whose body, if it is generated while it is sent (a StreamingHttpResponse: the
    audit export reads its batches then), is generated with `tenant` bound and under `span` (the
    request's server span, ended by then): its queries' spans and log lines are the request's,
    not root traces of no tenant. Bound around each chunk's generation only, not while the server
    sends it (the chunks may be asked for from other contexts)."""
    if not getattr(response, "streaming", False) or response.is_async or hasattr(response, "file_to_stream"):
        return response
    chunks = iter(response.streaming_content)

    def bound():
        while True:
            with contextlib.ExitStack() as within:
                if tenant is not None:
                    within.enter_context(tenant_bound(*tenant))
                if span is not None:
                    within.enter_context(trace.use_span(span, end_on_exit=False))
                try:
                    chunk = next(chunks)
                except StopIteration:
                    return
            yield chunk

    response.streaming_content = bound()
    return response


def current_tenant() -> tuple[int, str] | None:
    return _tenant.get()


class TenantSpanProcessor:
    """Stamps `tenant.id` and `tenant.slug` on every span as it starts (SpanProcessor protocol)."""

    def on_start(self, span, parent_context=None) -> None:
        bound = _tenant.get()
        if bound is None:
            # Started where the binding does not reach (a thread a library runs work in), under a
            # parent of this process that has its tenant: the parent's.
            parent = trace.get_current_span(parent_context)
            attributes = getattr(parent, "attributes", None) or {}
            if "tenant.id" in attributes:
                bound = (attributes["tenant.id"], attributes.get("tenant.slug", ""))
        if bound is not None:
            span.set_attributes({"tenant.id": bound[0], "tenant.slug": bound[1]})  # one lock, not two

    def on_end(self, span) -> None:
        pass

    def _on_ending(self, span) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def telemetry_enabled() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def telemetry_setup(role: str, *, exporter=None) -> bool:
    """Install the tracer provider and the instrumentations in this process, once; True if on.
    `exporter` (tests): export there, synchronously, whatever the environment says."""
    global _set_up
    if exporter is None and not telemetry_enabled():
        return False
    with _setup_lock:
        if _set_up:
            return True
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or f"foundry-{role}"})
        provider = TracerProvider(resource=resource)  # the sampler comes from OTEL_TRACES_SAMPLER
        provider.add_span_processor(TenantSpanProcessor())
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            from foundry import otlp_encoding

            otlp_encoding.install()  # the same message, built at a third of the cost
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        _instrument()
        _set_up = True
        logger.info("telemetry: tracing on for %s", resource.attributes.get("service.name"))
        return True


def _instrument() -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    _django_middleware_place()
    CeleryInstrumentor().instrument()
    PsycopgInstrumentor().instrument(enable_commenter=False, skip_dep_check=True)
    RedisInstrumentor().instrument()
    HTTPXClientInstrumentor().instrument(request_hook=client_url_redact)


_URL_ATTRIBUTES = ("http.url", "url.full")


def client_url_redact(span, request) -> None:
    """Outgoing HTTP spans carry the URL's origin only (scheme, host, port): an http tool puts
    its call's arguments (the model's output) into the path and the query, and a webhook's path
    or query may be its token. The httpx instrumentation's request hook."""
    if not span.is_recording():
        return
    parts = urlsplit(str(request[1]))
    origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/"
    attributes = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        if key in attributes:
            span.set_attribute(key, origin)
    for key in ("url.path", "url.query"):
        if key in attributes:
            span.set_attribute(key, "/" if key == "url.path" else "")


_ROUTING = "apps.tenants.middleware.TenantRoutingMiddleware"
_SERVER_SPANS = "foundry.telemetry.ServerSpanMiddleware"


def _django_middleware_place() -> None:
    """Django's server spans (ServerSpanMiddleware) go right after host routing: before it, health
    probes by address and unknown hosts would be traced; after it, the request's span starts
    with its tenant bound. Added only when tracing is on, so off it costs nothing."""
    from django.conf import settings

    middleware = [name for name in settings.MIDDLEWARE if name != _SERVER_SPANS]
    at = middleware.index(_ROUTING) + 1 if _ROUTING in middleware else 0
    settings.MIDDLEWARE = [*middleware[:at], _SERVER_SPANS, *middleware[at:]]


class ServerSpanMiddleware:
    """One SERVER span per Django request, named `METHOD route` (`GET api/v1/runs/<str:run_id>`):
    a trace of its own, linked to the caller's (W3C `traceparent`), which it continues only with
    FOUNDRY_TRACE_TRUST_CALLERS (a proxy or service in front that sets it) — a client's "sampled"
    flag would otherwise decide that every request it sends is traced (or none: left out of the
    ratio sampler's share); the caller's baggage is never taken over, so it
    never rides this process's outgoing calls), with the HTTP attributes of OpenTelemetry's Django
    instrumentation (its default, pre-stable names: `http.method`, `http.scheme`, `http.host`,
    `http.flavor`, `http.user_agent`, `net.peer.ip`, `http.route`, `http.status_code`) but not the
    request's path or query (`http.target`): a path may carry a secret (an invitation link's token)
    and a query may name people (a list's `filter`); `http.route` is the path's template. A method
    the HTTP conventions do not know is `_OTHER` and names the span `HTTP` (span names stay few).
    5xx answers and exceptions mark the span as an error. The URLs in
    OTEL_PYTHON_DJANGO_EXCLUDED_URLS (or OTEL_PYTHON_EXCLUDED_URLS) are not traced.

    Why not the instrumentation package's middleware: with it a traced request cost ~470 µs more
    CPU than untraced, with this one ~300 µs, for the same span (it builds the absolute URI three
    times and collects the request's attributes twice per request); docs/observability.md, "Cost"."""

    def __init__(self, get_response):
        from django.conf import settings
        from opentelemetry.instrumentation.wsgi import wsgi_getter
        from opentelemetry.propagate import extract, get_global_textmap
        from opentelemetry.util.http import get_excluded_urls, sanitize_method

        self.get_response = get_response
        self._trusted = settings.FOUNDRY_TRACE_TRUST_CALLERS
        self._method = sanitize_method
        self.tracer = tracer
        self._extract = extract
        self._getter = wsgi_getter
        self._excluded = get_excluded_urls("DJANGO")
        # The request headers the configured propagators read (OTEL_PROPAGATORS): a request with
        # none of them starts a trace of its own without asking them (most requests).
        self._carried = {f"HTTP_{name.upper().replace('-', '_')}" for name in get_global_textmap().fields}

    def __call__(self, request):
        if self._excluded.url_disabled(request.path):
            return self.get_response(request)
        meta = request.META
        method = self._method(request.method or "")
        attributes = {
            "http.method": method,
            "http.scheme": request.scheme,
            "http.host": meta.get("HTTP_HOST") or meta.get("SERVER_NAME", ""),
            "http.flavor": meta.get("SERVER_PROTOCOL", "").rpartition("/")[2],
            "net.peer.ip": meta.get("REMOTE_ADDR", ""),
        }
        agent = meta.get("HTTP_USER_AGENT")
        if agent:
            attributes["http.user_agent"] = agent
        name = "HTTP" if method == "_OTHER" else method
        # As `extract` answers a request without them: a root of its own, whatever is current.
        carried = self._extract(meta, getter=self._getter) if not self._carried.isdisjoint(meta) else Context()
        links = ()
        if not self._trusted and carried:  # a trace of its own, sampled here, linked to the caller's
            caller = trace.get_current_span(carried).get_span_context()
            carried, links = Context(), ([trace.Link(caller)] if caller.is_valid else [])
        span = self.tracer.start_span(name, context=carried, kind=SpanKind.SERVER, attributes=attributes, links=links)
        request.server_span = span  # the error-response log line, made after it ended, carries its ids
        with trace.use_span(span, end_on_exit=True):
            response = self.get_response(request)
            match = request.resolver_match
            if match is not None and match.route:
                span.update_name(f"{name} {match.route}")
                span.set_attribute("http.route", match.route)
            span.set_attribute("http.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
        return streamed_within(response, span=span)

    def process_exception(self, request, exception) -> None:
        """A view's exception (Django turns it into a 500 answer after this): on the span."""
        span = trace.get_current_span()
        if span.is_recording():
            span.record_exception(exception)


def telemetry_flush(timeout_millis: int = 5000) -> None:
    provider = trace.get_tracer_provider()
    flush = getattr(provider, "force_flush", None)
    if flush is not None:
        flush(timeout_millis)
