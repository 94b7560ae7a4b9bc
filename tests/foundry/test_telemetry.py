"""Traces (foundry/telemetry.py): a tenant's API request that starts a run makes one trace — the
web process's HTTP span, the Celery task's span in a real worker process, each agent step and
the model call with its GenAI token counts — every one of them carrying the tenant. The web
server and the worker export over OTLP/HTTP to a receiver this test runs on loopback.

The test process itself is never instrumented (a tracer provider is global to a process)."""

import http.client
import json
import subprocess
import sys
import threading
import time
import uuid

import pytest
from django.db import connection

from apps.runs.models import Run
from apps.tenants.services import tenant_provision
from tests.api.conftest import issue
from tests.conftest import PASSWORD, ROOT, free_port, redis_server, server_env, server_process
from tests.otlp_receiver import OtlpReceiver
from tests.runs.conftest import FINANCE, TRIAGE, deploy
from tests.runs.test_worker import wait_for, worker

SERVER, CONSUMER = 2, 5  # opentelemetry.proto SpanKind


@pytest.fixture
def receiver():
    receiver = OtlpReceiver()
    yield receiver
    receiver.close()


def otel_env(receiver: OtlpReceiver, queue: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_TRACES_SAMPLER": "always_on",
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms: spans reach the receiver soon
        "FOUNDRY_RUNS_QUEUE": queue,
    }


@pytest.fixture
def traced_server(receiver, django_db_setup):
    """gunicorn (two workers, four threads each) with tracing on, as deployed."""
    queue = f"runs-trace-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = server_env(FOUNDRY_BIND=f"127.0.0.1:{port}", FOUNDRY_ACCESS_LOG="0", **otel_env(receiver, queue))
    log = ROOT / "test-artifacts" / f"gunicorn-traced-{port}.log"
    log.parent.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "gunicorn", "foundry.wsgi", "--config", "foundry/gunicorn.conf.py"]
    with server_process(command, port=port, env=env, log=log):
        yield port, queue


def call(port: int, tenant, token: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    connection_ = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Host": f"{tenant.slug}.localhost", "Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    connection_.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = connection_.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def test_a_run_started_over_the_api_is_one_trace_through_the_worker(
    traced_server, receiver, fresh_tenant, django_db_blocker
):
    port, queue = traced_server
    with django_db_blocker.unblock():
        tenant = fresh_tenant
        deploy(tenant, FINANCE, TRIAGE)
        token = issue(tenant)
        with worker(queue, **otel_env(receiver, queue)):
            status, body = call(
                port,
                tenant,
                token,
                "POST",
                "/api/v1/runs",
                {"agent": "invoice-triage", "input": "Triage invoice INV-1001."},
            )
            assert status == 201, body
            run = wait_for(tenant, Run(pk=body["id"]), "succeeded", "failed")
            assert (run.status, run.step_count) == ("succeeded", 3), run.message  # model, tool, model
            connection.set_schema_to_public()

            def complete(spans) -> bool:
                server = [s for s in spans if s.kind == SERVER and s.attributes.get("http.route") == "api/v1/runs"]
                if not server:
                    return False
                trace_ = [s for s in spans if s.trace_id == server[0].trace_id]
                return sum(s.name.startswith("chat ") for s in trace_) >= 2 and any(
                    s.name == "run/runs.execute" for s in trace_
                )

            spans = receiver.wait_for(complete)
    (request,) = [s for s in spans if s.kind == SERVER and s.attributes.get("http.route") == "api/v1/runs"]
    trace_ = [s for s in spans if s.trace_id == request.trace_id]
    assert request.service == "foundry-web" and request.attributes["http.status_code"] == 201
    task = next(s for s in trace_ if s.name == "run/runs.execute")
    assert task.service == "foundry-worker" and task.kind == CONSUMER
    steps = [s for s in trace_ if s.name == "agent.step"]
    assert sorted(s.attributes["agent.step.index"] for s in steps) == [1, 2, 3]
    assert {s.attributes["gen_ai.agent.name"] for s in steps} == {"invoice-triage"}
    chats = [s for s in trace_ if s.name.startswith("chat ")]
    for chat in chats:
        assert chat.attributes["gen_ai.operation.name"] == "chat"
        assert chat.attributes["gen_ai.provider.name"] == "scripted"
        assert chat.attributes["gen_ai.request.model"] == "scripted-1"
        assert chat.attributes["gen_ai.usage.input_tokens"] > 0 and chat.attributes["gen_ai.usage.output_tokens"] > 0
        assert "gen_ai.prompt" not in chat.attributes and "gen_ai.completion" not in chat.attributes
    assert sum(c.attributes["gen_ai.usage.input_tokens"] for c in chats) == run.input_tokens
    tool = next(s for s in trace_ if s.name == "execute_tool find_invoices")
    assert tool.attributes["gen_ai.tool.name"] == "find_invoices"
    # Every span of the request, the task, the steps, the tool and the model calls names the tenant.
    for span in [request, task, *steps, *chats, tool]:
        assert span.attributes["tenant.id"] == tenant.pk, span
        assert span.attributes["tenant.slug"] == tenant.slug, span


def test_interleaved_requests_of_two_tenants_never_carry_each_others_id(
    traced_server, receiver, fresh_tenant, django_db_blocker
):
    port, _queue = traced_server
    with django_db_blocker.unblock():
        first = fresh_tenant
        second = tenant_provision(
            slug=f"t{first.slug[1:]}", name="Second Co", owner_email="owner@second.test", owner_password=PASSWORD
        ).tenant
        tokens = {first.slug: issue(first), second.slug: issue(second)}
    failures = []

    def client(tenant) -> None:
        for _ in range(25):
            status, _ = call(port, tenant, tokens[tenant.slug], "GET", "/api/v1/workspace")
            if status != 200:
                failures.append(status)

    threads = [threading.Thread(target=client, args=(t,)) for t in (first, second) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures

    def served(spans) -> list:
        return [s for s in spans if s.kind == SERVER and s.attributes.get("http.route") == "api/v1/workspace"]

    spans = receiver.wait_for(lambda spans: len(served(spans)) >= 150)
    owner = {s.trace_id: s.attributes.get("tenant.id") for s in served(spans)}
    assert sorted(owner.values()).count(first.pk) == 75 and sorted(owner.values()).count(second.pk) == 75
    for span in spans:  # the queries and Redis calls of each request: only its own tenant, if any
        if span.trace_id in owner and "tenant.id" in span.attributes:
            assert span.attributes["tenant.id"] == owner[span.trace_id], span
    # A reused connection's health check (SELECT 1) is not traced; the requests' queries are.
    statements = [s.attributes.get("db.statement") for s in spans if s.trace_id in owner]
    assert "SELECT 1" not in statements and any("tokens_apitoken" in (q or "") for q in statements)


def test_an_mcp_request_is_traced_with_its_tenant(receiver, fresh_tenant, django_db_blocker):
    port = free_port()
    env = server_env(**otel_env(receiver, "unused"))
    command = [sys.executable, "-m", "uvicorn", "foundry.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--lifespan", "on", "--no-access-log"]
    with django_db_blocker.unblock():
        token = issue(fresh_tenant)
    with server_process(command, port=port, env=env, log=ROOT / "test-artifacts" / f"uvicorn-traced-{port}.log"):
        connection_ = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        connection_.request(
            "POST",
            "/mcp",
            body=json.dumps(body),
            headers={
                "Host": f"{fresh_tenant.slug}.localhost",
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
            },
        )
        response = connection_.getresponse()
        assert response.status == 200, response.read()
        response.read()

        def served(spans) -> list:
            return [s for s in spans if s.kind == SERVER and s.name.startswith("POST /mcp")]

        spans = receiver.wait_for(lambda spans: served(spans))
    (span,) = served(spans)
    assert span.attributes["tenant.id"] == fresh_tenant.pk and span.attributes["tenant.slug"] == fresh_tenant.slug
    queries = [s for s in spans if s.trace_id == span.trace_id and s.name == "SELECT" and "tenant.id" in s.attributes]
    assert all(s.attributes["tenant.id"] == fresh_tenant.pk for s in queries)


def test_prompts_and_completions_reach_traces_only_when_the_workspace_allows_it(acme, globex, graph_spans):
    """In-process, on a tracer provider of the test's own (never the process's global one)."""
    from tests.api.conftest import api
    from tests.conftest import audit_events
    from tests.runs.conftest import FINANCE, TRIAGE, advance, deploy
    from tests.runs.test_engine import start

    exporter = graph_spans
    agent = deploy(acme, FINANCE, TRIAGE)
    advance(start(acme, agent, "Triage invoice INV-1001."), "acme")
    chats = [s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]
    assert chats and not any("gen_ai.input.messages" in s.attributes for s in chats)

    # Viewers may not change it; an admin may, and it is audited; a string is not a boolean.
    viewer = api(acme, issue(acme, role="viewer", scopes=["read"]))
    assert (
        viewer.patch("/api/v1/workspace", {"trace_content": True}, content_type="application/json").status_code == 403
    )
    admin = api(acme, issue(acme))
    refused = admin.patch("/api/v1/workspace", {"trace_content": "yes"}, content_type="application/json")
    assert refused.status_code == 400
    assert admin.get("/api/v1/workspace").json()["trace_content"] is False  # refused: nothing changed
    assert not audit_events("acme", action="workspace.trace_content")
    answer = admin.patch("/api/v1/workspace", {"trace_content": True}, content_type="application/json")
    assert answer.status_code == 200 and answer.json()["trace_content"] is True
    assert audit_events("acme", action="workspace.trace_content")[0].data == {"before": False, "after": True}
    assert api(globex, issue(globex)).get("/api/v1/workspace").json()["trace_content"] is False  # its own

    exporter.clear()
    advance(start(acme, agent, "Triage invoice INV-1001."), "acme")
    chats = [s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]
    assert chats and all("INV-1001" in s.attributes["gen_ai.input.messages"] for s in chats)
    assert all(s.attributes["gen_ai.output.messages"].startswith("[") for s in chats)


def test_beat_pushes_the_platforms_metrics_over_otlp(receiver, django_db_setup, tmp_path):
    command = [sys.executable, "-m", "celery", "-A", "foundry", "beat", "--loglevel", "WARNING"]
    command += ["--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"]
    command += ["--pidfile", str(tmp_path / "beat.pid")]
    # Beat sends its due tasks when it starts: to a broker of its own, not the session workers' queue.
    with redis_server() as (_redis, port):
        env = server_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_METRIC_EXPORT_INTERVAL="300",
            OTEL_SERVICE_NAME="beat-test",
            REDIS_URL=f"redis://127.0.0.1:{port}/0",
        )
        beat = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while ("beat-test", "foundry.queue.depth") not in receiver.metrics:
                assert beat.poll() is None, "beat exited"
                assert time.monotonic() < deadline, f"no metrics came: {receiver.metrics[:20]}"
                time.sleep(0.1)
        finally:
            beat.terminate()
            beat.wait(timeout=20)
