"""Prompts and completions reach traces only where the workspace allows it (`trace_content`,
default off; docs/observability.md "Traces"). Two libraries the runtime loads have tracing of
their own, switched by environment variables of the platform's process — LangSmith's (through
langchain-core, on every graph run) and the anthropic SDK's — and whatever one operator variable
said applied to every workspace's runs: their prompts left for LangSmith or for spans. Both are
now off in code (foundry/runtime/graph.py `_invoke`, provider_anthropic.py), whatever the
environment says. Found by a review.
"""

import threading
from http.server import BaseHTTPRequestHandler

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from foundry.runtime.graph import AgentGraph
from foundry.runtime.network import NetworkPolicy
from foundry.runtime.providers import ProviderSettings, ScriptedProvider, provider_create
from tests.providers.fake_models import FakeModelServer, Reply, anthropic_message, text
from tests.runtime.conftest import EXAMPLES, load, respond
from tests.runtime.test_provider_anthropic import CONVERSATION
from tests.stub_http import StubHTTPServer

PROMPT = "Jane Q. Customer, IBAN DE89370400440532013000"
ANSWER = "PRIVATE-COMPLETION-7731"


class _Collector:
    """A loopback HTTP endpoint recording every body sent to it (a stand-in for LangSmith)."""

    def __init__(self):
        self.bodies: list[bytes] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _any(self):
                size = int(self.headers.get("content-length") or 0)
                collector.bodies.append(self.rfile.read(size))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = do_PATCH = _any

        self.server = StubHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.origin = f"http://127.0.0.1:{self.server.server_port}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _langsmith_caches_clear():
    from langsmith import run_trees, utils

    utils.get_env_var.cache_clear()
    utils.get_tracer_project.cache_clear()
    run_trees._CLIENT = None


def test_langsmith_environment_does_not_ship_every_workspaces_prompts_to_langsmith(monkeypatch):
    """langchain-core attaches LangSmith's tracer to every graph invocation when the process has
    LANGSMITH_TRACING=true (or LANGCHAIN_TRACING_V2=true), a common variable where LangChain is
    used: every workspace's prompts and completions were posted to LangSmith (here a loopback
    stand-in). Runs are invoked with LangSmith's tracing off: nothing is sent."""
    collector = _Collector()
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2_pt_review")
    monkeypatch.setenv("LANGSMITH_ENDPOINT", collector.origin)
    _langsmith_caches_clear()
    try:
        manifest = load(EXAMPLES / "agents" / "invoice-triage.yaml")
        domain = load(EXAMPLES / "domains" / "finance.yaml")
        graph = AgentGraph(manifest, domain, provider=ScriptedProvider([respond(ANSWER)]))  # trace_content off
        assert graph.start("t1", PROMPT).status == "succeeded"
        from langchain_core.tracers.langchain import wait_for_all_tracers

        wait_for_all_tracers()
    finally:
        monkeypatch.undo()
        _langsmith_caches_clear()
        collector.close()
    leaked = [body for body in collector.bodies if PROMPT.encode() in body or ANSWER.encode() in body]
    assert not leaked, f"{len(leaked)} upload(s) to LangSmith carry the run's prompt or completion"


def _anthropic_call_spans(path: str = "") -> tuple[list, str]:
    """The spans an anthropic provider's call exports (the SDK's own, if any) to a tracer
    provider of the test's own, and the fake server's origin; the endpoint at `path` under it."""
    server = FakeModelServer()
    server.queue(Reply(body=anthropic_message(text(ANSWER))))
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        settings = ProviderSettings(
            model="claude-test",
            parameters={},
            credentials={"api_key": "sk-ant-review", "base_url": server.origin + path, "max_retries": 0},
            network=NetworkPolicy(allow_private=True),
        )
        provider = provider_create("anthropic", settings)
        # The client resolved its option from the environment when built; only the provider it
        # exports to is swapped for the test's own (the process's global one is left alone).
        provider.client._set_open_telemetry({**provider.client.open_telemetry, "tracer_provider": tracer_provider})
        provider.complete(CONVERSATION, [])
    finally:
        server.close()
    return exporter.get_finished_spans(), server.origin


def test_anthropic_sdk_content_mode_does_not_put_prompts_on_spans_without_trace_content(monkeypatch):
    """The anthropic SDK opens a span of its own per API call, configured by
    ANTHROPIC_OPEN_TELEMETRY_* variables; with ..._TRACES_CONTENT_MODE=content it carried the
    system prompt, input and output messages of every workspace. The client is built with the
    SDK's spans off (the graph's `chat <model>` span is the call's): none carries them."""
    monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE", "content")
    spans, _ = _anthropic_call_spans()
    carried = {
        (span.name, key)
        for span in spans
        for key, value in span.attributes.items()
        if isinstance(value, str) and ("Triage INV-7" in value or ANSWER in value or "You triage invoices" in value)
    }
    assert not carried, f"prompts/completions on spans without trace_content: {sorted(carried)}"


def test_anthropic_sdk_span_carries_only_the_origin_of_the_providers_url():
    """docs/observability.md: outgoing HTTP spans carry the URL's origin only. The anthropic SDK's
    own span (on by default) had the workspace's base URL with its path (`url.full`, `url.path`);
    with its spans off, no span carries more than the origin."""
    spans, origin = _anthropic_call_spans("/gw/acct-7f3a/team-x")
    urls = {
        (span.name, key): value
        for span in spans
        for key, value in span.attributes.items()
        if key in ("url.full", "http.url", "url.path") and value not in (origin + "/", "/")
    }
    assert not urls, f"outgoing spans carry more than the URL's origin: {urls}"
