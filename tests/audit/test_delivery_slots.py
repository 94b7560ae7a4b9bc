"""SIEM delivery runs hold a worker process for as long as the receiver takes to answer; they take
a delivery slot of their workspace and one of the platform's first (apps/audit/delivery.py,
FOUNDRY_AUDIT_DELIVERIES_PER_WORKSPACE / _MAX), so one workspace's slow receivers cannot hold
every worker process while another workspace's runs wait queued (found by the noisy-neighbour
review: two sinks answering slowly, with success, took both processes of a worker)."""

import http.server
import ssl
import threading
import time
import uuid

import pytest
from django_tenants.utils import schema_context

from apps.audit.delivery import SinkFields, audit_sink_get, audit_sink_set, sink_deliver, sinks_due
from apps.audit.tasks import audit_deliver_sinks
from apps.runs.models import Run
from apps.runs.services import run_start
from apps.tenants import limits
from apps.tenants.services import tenant_http_networks_set, tenant_provision
from foundry.celery import app
from foundry.ratelimit import limit_key
from tests.audit.test_delivery import add_events, self_signed
from tests.conftest import PASSWORD, tenant_user
from tests.runs.conftest import FINANCE, TRIAGE, deploy
from tests.runs.test_worker import worker
from tests.stub_http import StubHTTPServer


class SlowWebhook:
    """An HTTPS receiver that acknowledges every POST with a 200, once `release` is set (or after
    `hold` seconds): a receiver slow to answer, but answering, so no delivery backs off."""

    def __init__(self, tls: ssl.SSLContext, hold: float = 30.0):
        self.in_flight = 0
        self.posts = 0
        self.release = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.in_flight += 1
                receiver.posts += 1
                receiver.release.wait(hold)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.in_flight -= 1

            def log_message(self, *args):
                pass

        self.server = StubHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/ingest"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def quick_webhook(tmp_path):
    pem, context = self_signed(tmp_path)
    hook = SlowWebhook(context, hold=0)
    yield hook, pem
    hook.stop()


def webhook_sink(tenant, name: str, url: str, pem: str):
    return audit_sink_set(
        tenant=tenant, name=name, fields=SinkFields(kind="webhook", url=url, ca_certificate=pem), actor="test"
    )


@pytest.fixture
def loopback(acme, globex):
    for tenant in (acme, globex):
        tenant_http_networks_set(tenant=tenant, networks=["127.0.0.0/8"], actor="test")


def held(key_id: str):
    """A delivery slot taken, as another worker's delivery run in progress holds it."""
    key = limit_key("siem", key_id)
    lease = limits.limiter().acquire(key, 1, 60)
    assert lease is not None
    return key, lease


def test_a_workspace_delivers_one_sink_at_a_time_and_the_platform_one_workspace(acme, globex, loopback, quick_webhook):
    hook, pem = quick_webhook
    first, second = (webhook_sink(acme, name, hook.url, pem) for name in ("first", "second"))
    other = webhook_sink(globex, "theirs", hook.url, pem)
    add_events(acme, 2)
    add_events(globex, 2)

    key, lease = held(str(acme.pk))  # acme's first sink is being delivered elsewhere
    try:
        assert sink_deliver(tenant_id=acme.pk, sink_id=second.pk).status == "deferred"
        assert hook.posts == 0 and audit_sink_get(acme.pk, "second").cursor == 0  # untouched, not backed off
        assert audit_sink_get(acme.pk, "second").next_attempt_at is None
        # Another workspace is not held back by acme's slot (the platform has one free).
        assert sink_deliver(tenant_id=globex.pk, sink_id=other.pk).status == "delivered"
    finally:
        limits.limiter().release(key, lease)
    assert sink_deliver(tenant_id=acme.pk, sink_id=second.pk).status == "delivered"

    add_events(acme, 1)
    key, lease = held("all")  # the platform's one slot taken (by any workspace)
    try:
        assert sink_deliver(tenant_id=acme.pk, sink_id=first.pk).status == "deferred"
    finally:
        limits.limiter().release(key, lease)
    assert sink_deliver(tenant_id=acme.pk, sink_id=first.pk).status == "delivered"


def test_the_platforms_slots_are_a_setting(acme, globex, loopback, quick_webhook, settings):
    hook, pem = quick_webhook
    sink = webhook_sink(globex, "theirs", hook.url, pem)
    add_events(globex, 1)
    settings.FOUNDRY_AUDIT_DELIVERIES_MAX = 2
    key, lease = held("all")
    try:
        assert sink_deliver(tenant_id=globex.pk, sink_id=sink.pk).status == "delivered"
    finally:
        limits.limiter().release(key, lease)


def test_the_least_recently_delivered_sinks_are_queued_first(acme, globex, loopback, quick_webhook):
    hook, pem = quick_webhook
    old, new = webhook_sink(acme, "old", hook.url, pem), webhook_sink(globex, "new", hook.url, pem)
    add_events(acme, 1)
    add_events(globex, 1)
    assert sink_deliver(tenant_id=acme.pk, sink_id=old.pk).status == "delivered"
    add_events(acme, 1)
    due = sinks_due()
    # globex's sink was never delivered: it goes before acme's, which just was.
    assert due.index((globex.pk, new.pk)) < due.index((acme.pk, old.pk))


def provision(prefix: str):
    slug = f"{prefix}{uuid.uuid4().hex[:10]}"
    return tenant_provision(
        slug=slug, name=f"Co {slug}", owner_email=f"owner@{slug}.test", owner_password=PASSWORD
    ).tenant


@pytest.fixture
def shared_queue(settings):
    """One queue for runs and deliveries, as in the default deployment, named for this test so
    that no other test session's worker takes its messages."""
    name = f"noisy-{uuid.uuid4().hex[:8]}"
    default = app.conf.task_default_queue
    app.conf.task_default_queue = name
    settings.FOUNDRY_RUNS_QUEUE = settings.FOUNDRY_AUDIT_DELIVERY_QUEUE = name
    yield name
    app.conf.task_default_queue = default


def test_one_workspaces_slow_receivers_leave_a_worker_for_another_workspaces_run(
    django_db_setup, django_db_blocker, shared_queue, tmp_path
):
    """A real worker with two processes; the noisy workspace's two sinks answer slowly. One of
    its deliveries holds a process, the other is deferred, and the quiet workspace's run is taken
    by the second process at once (before, both waited on the receiver and the run stayed queued)."""
    pem, context = self_signed(tmp_path)
    hook = SlowWebhook(context)
    try:
        with django_db_blocker.unblock():
            noisy, quiet = provision("noisy"), provision("quiet")
            noisy = tenant_http_networks_set(tenant=noisy, networks=["127.0.0.0/8"], actor="test")
            for n in range(2):
                webhook_sink(noisy, f"hook{n}", hook.url, pem)
            agent = deploy(quiet, FINANCE, TRIAGE)
            with worker(shared_queue, concurrency=2):
                assert audit_deliver_sinks.apply().get() == 2  # the beat queues both noisy sinks
                deadline = time.monotonic() + 20
                while hook.in_flight < 1 and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(1)  # the second delivery, had it started, would be in flight by now
                assert hook.in_flight == 1

                with schema_context(quiet.schema_name):
                    owner = tenant_user(quiet, f"owner@{quiet.slug}.test")
                    run = run_start(actor=owner, agent=agent, input="Triage invoice INV-1001.")
                    deadline = time.monotonic() + 15
                    while time.monotonic() < deadline:
                        run = Run.objects.get(pk=run.pk)
                        if run.status in Run.FINISHED:
                            break
                        time.sleep(0.1)
                assert run.status == "succeeded"
                assert hook.in_flight == 1  # still delivering: the run did not wait for it
                hook.release.set()
    finally:
        hook.stop()
