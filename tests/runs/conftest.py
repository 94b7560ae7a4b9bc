"""Fixtures for runs: deployed agents, a way to advance a run here, and a real HTTP service
on loopback whose side effects the tests count."""

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from apps.catalog.services import agent_deploy, version_publish
from apps.runs.engine import Attempt, run_advance
from apps.runs.models import Run
from apps.tenants.models import Tenant
from tests.catalog.conftest import example
from tests.conftest import tenant_user
from tests.stub_http import StubHTTPServer

FINANCE = example("domains/finance.yaml")
TRIAGE = example("agents/invoice-triage.yaml")


# A lead agent whose one tool is the sub-agent `helper`, which answers from its manifest's test.
SUBAGENT = "    - name: ask_helper\n      type: subagent\n      description: Ask the helper.\n      agent: helper\n"
HELPER_TESTS = (
    "  tests:\n    - name: looks-up\n      input: What is AP?\n      script:\n"
    '        - tool_call: {tool: find_invoices, arguments: {question: "What is AP?"}}\n'
    "        - respond: AP is accounts payable.\n"
)
DELEGATE_SCRIPT = [{"tool_call": {"tool": "ask_helper", "arguments": {"input": "What is AP?"}}}, {"respond": "done"}]


def delegating_run(tenant: Tenant, *, helper_limits: str = HELPER_TESTS) -> Run:
    """`helper` and `lead` deployed in `tenant`, and a run of `lead` started by its owner that asks
    the helper once (DELEGATE_SCRIPT)."""
    from apps.runs.services import run_start

    deploy(tenant, FINANCE, agent_yaml("helper", limits=helper_limits))
    lead = deploy(tenant, agent_yaml("lead", tools=SUBAGENT))
    with schema_context(tenant.schema_name):
        owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
        return run_start(actor=owner, agent=lead, input="Delegate.", script=DELEGATE_SCRIPT)


def deploy(tenant: Tenant, *sources: str):
    """Publish `sources` in `tenant` as its owner and deploy the last one (an agent); its Document."""
    owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
    with schema_context(tenant.schema_name):
        for source in sources:
            published = version_publish(actor=owner, source=source, message="test")
        version = published.version
        agent_deploy(actor=owner, document=version.document, number=version.number)
        version.document.refresh_from_db()
        return version.document


def advance(run: Run, schema: str | None = None) -> Run:
    """Advance the run here, as a worker would, in its tenant's schema; the run as it now is."""
    with schema_context(schema or connection.schema_name):
        run_advance(run.pk)
        return Run.objects.get(pk=run.pk)


class Killed(BaseException):
    """The worker dies here: nothing after this point runs."""


def advance_dying_after_record(run: Run, monkeypatch, index: int, schema: str = "acme") -> None:
    """Advance `run` as a worker that dies right after recording step `index`, before any
    checkpoint holds it (the next worker must replay the step, not make it again)."""
    record = Attempt._record

    def record_then_die(self, step, payload):
        record(self, step, payload)
        if step["index"] == index:
            raise Killed()

    monkeypatch.setattr(Attempt, "_record", record_then_die)
    try:
        with pytest.raises(Killed):
            advance(run, schema)
    finally:
        monkeypatch.setattr(Attempt, "_record", record)


def agent_yaml(
    name: str = "clerk", *, tools: str = "", approvals: str = "", limits: str = "", provider: str = "scripted"
) -> str:
    """A small agent on the finance domain (v1)."""
    return f"""apiVersion: foundry/v1
kind: Agent
metadata:
  name: {name}
  project: tests
spec:
  domain: {{name: finance, version: 1}}
  model: {{provider: {provider}, name: {provider}-1}}
  instructions: Help with invoices.
  tools:
    - name: find_invoices
      type: dis_query
      entity: invoice
      description: Describe invoices.
{tools}{approvals}{limits}"""


def http_tool(port: int, name: str = "ledger", method: str = "POST", host: str = "127.0.0.1") -> str:
    return f"""    - name: {name}
      type: http
      description: Book an entry in the ledger.
      method: {method}
      url: http://{host}:{port}/entries/{{id}}
      hosts: ["{host}"]
      timeout_seconds: 5
"""


class Ledger:
    """A real HTTP service with side effects: each POST books an entry, once per Idempotency-Key."""

    def __init__(self):
        self.requests: Counter = Counter()  # Idempotency-Key (or path) -> requests received
        self.booked: list[str] = []  # entries booked, in order, once per key
        self.delay = 0.0
        self.hold: dict[str, threading.Event] = {}  # path -> released when set
        self.arrived: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        ledger = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._answer()

            def do_POST(self):
                self._answer()

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = urlsplit(self.path).path
                key = self.headers.get("Idempotency-Key") or path
                ledger.arrived.setdefault(path, threading.Event()).set()
                if path in ledger.hold:
                    ledger.hold[path].wait(30)
                if ledger.delay:
                    threading.Event().wait(ledger.delay)
                with ledger._lock:
                    ledger.requests[key] += 1
                    if ledger.requests[key] == 1:
                        ledger.booked.append(path)
                answer = json.dumps({"booked": path, "body": body.decode() or None}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = StubHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        for event in self.hold.values():
            event.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ledger():
    service = Ledger()
    yield service
    service.close()


@pytest.fixture
def loopback_allowed(settings):
    """Agents' http tools may reach 127.0.0.1 (an operator setting; refused by default)."""
    import ipaddress

    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]


@pytest.fixture
def triage(acme):
    """acme with finance v1 and invoice-triage deployed."""
    return deploy(acme, FINANCE, TRIAGE)


def model_server_for(tenant, settings, provider: str = "openai"):
    """A real local server speaking `provider`'s wire format, and the tenant's stored credentials
    for it (the caller closes it)."""
    import ipaddress

    from apps.providers.services import credential_set
    from tests.providers.fake_models import FakeModelServer

    settings.FOUNDRY_PROVIDER_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    server = FakeModelServer()
    with schema_context(tenant.schema_name):
        credential_set(
            actor=tenant_user(tenant, f"owner@{tenant.slug}.test"),
            provider=provider,
            api_key="sk-test-abcdef123456",
            base_url=f"{server.origin}/v1" if provider == "openai" else server.origin,
        )
    return server


@pytest.fixture
def model_server(acme, settings):
    """A real local server speaking OpenAI's wire format, and acme's stored credentials for it."""
    server = model_server_for(acme, settings)
    yield server
    server.close()


@pytest.fixture
def openai_agent(acme, model_server):
    """`model_server` and a deployed agent using it: (server, agent)."""
    return model_server, deploy(acme, FINANCE, agent_yaml(provider="openai"))


def worker_start(schema: str, run_id, outcomes: dict, name: str) -> threading.Thread:
    """A thread named `name` advancing the run as a worker would; its outcome (or the repr of
    what it raised) lands in `outcomes[name]`. Started."""

    def work():
        try:
            with schema_context(schema):
                outcomes[name] = run_advance(run_id)
        except Exception as exc:  # noqa: BLE001 — reported to the test, which asserts on it
            outcomes[name] = repr(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=work, name=name)
    thread.start()
    return thread
