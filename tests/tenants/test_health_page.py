"""The operator console's Health page (/health/ on the platform host): what /readyz checks, each
with its latency or why it failed, the Celery queues' depths and the workspaces by status.

The broker is a Redis of the test's own, so its workers and queues are this test's alone (a
worker's heartbeat written by the real heartbeat step, messages queued through kombu, as Celery's
Redis transport queues them) and it can be stopped for real."""

from types import SimpleNamespace

import pytest
from kombu import Connection

from apps.accounts.models import User
from apps.tenants.models import Tenant
from foundry.heartbeat import WorkerHeartbeat, heartbeat_client
from tests.conftest import client_for, redis_server


@pytest.fixture
def broker(settings):
    """A broker of this test's own: (its server process, its URL)."""
    with redis_server() as (proc, port):
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
        settings.FOUNDRY_RUNS_QUEUE = "runs"
        settings.FOUNDRY_READY_REQUIRES_WORKER = True
        yield proc, settings.CELERY_BROKER_URL


def a_worker_heartbeats(hostname: str) -> None:
    step = WorkerHeartbeat(SimpleNamespace(hostname=hostname))
    step.client = heartbeat_client()
    step.beat(hostname)


def test_the_health_page_shows_each_check_the_queues_and_the_workspaces(operator_client, acme, globex, broker):
    _, url = broker
    a_worker_heartbeats("worker-1@test")
    with Connection(url) as connection:
        queue = connection.SimpleQueue("runs")
        for n in range(3):
            queue.put({"run": n})
        queue.close()

    response = operator_client.get("/health/")
    assert response.status_code == 200
    checks = response.context["checks"]
    assert {name: check["status"] for name, check in checks.items()} == {
        "postgres": "up",
        "redis": "up",
        "broker": "up",
        "workers": "up",
    }
    assert all(check["latency_ms"] >= 0 for check in checks.values())
    assert response.context["ready"] is True
    assert response.context["queues"] == {"celery": 0, "runs": 3}
    active = Tenant.objects.filter(status=Tenant.Status.ACTIVE).count()
    assert active >= 2 and ("Active", active) in response.context["tenant_statuses"]
    html = response.content.decode()
    assert 'data-testid="ready">ready<' in html and "1 live worker<" in html
    assert '<a href="/health/" aria-current="page">Health</a>' in html


def test_a_stopped_broker_and_no_worker_show_as_unavailable(operator_client, broker):
    proc, _ = broker
    proc.terminate()
    proc.wait(timeout=10)
    response = operator_client.get("/health/")
    assert response.status_code == 200  # a page for people: the banner says it, /readyz answers 503
    assert response.context["ready"] is False
    assert response.context["checks"]["broker"] == {
        "status": "down",
        "error": "ConnectionError",
        "latency_ms": response.context["checks"]["broker"]["latency_ms"],
    }
    assert response.context["checks"]["workers"]["status"] == "down"
    assert response.context["queues"] is None
    html = response.content.decode()
    assert 'data-testid="ready">unavailable<' in html and "The broker cannot be read." in html


def test_the_health_page_is_for_operators_on_the_platform_host_only(db, acme):
    User.objects.create_user("notstaff@platform.test", "x-long-password-1", is_staff=False)
    assert client_for(None, "notstaff@platform.test").get("/health/").status_code == 403
    anonymous = client_for(None).get("/health/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    # A workspace's owner on its host: no such page there.
    assert client_for(acme, "owner@acme.test").get("/health/").status_code == 404


def test_the_health_page_only_reads(operator_client):
    """A post (or any other method) is refused with 405 and nothing is read or changed."""
    before = Tenant.objects.count()
    assert operator_client.post("/health/", {"x": "1"}).status_code == 405
    assert operator_client.delete("/health/").status_code == 405
    assert Tenant.objects.count() == before


def test_the_health_page_shows_when_beat_last_sent_each_scheduled_job(operator_client, db, settings):
    """Beat is one process whose silence nothing else shows: audit heads go unsigned, purges,
    backups and retention wait. The page reads when it last sent each job (django_celery_beat's
    records) and calls a job late once it is more than 10 minutes past due."""
    from datetime import timedelta

    from django.utils import timezone
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every_15s, _ = IntervalSchedule.objects.get_or_create(every=15, period=IntervalSchedule.SECONDS)
    now = timezone.now()
    for name, task, last in [
        ("audit-deliver-sinks", "audit.deliver_sinks", now - timedelta(seconds=20)),  # on time
        ("runs-sweep", "runs.sweep", now - timedelta(minutes=30)),  # every 2 minutes: late
    ]:
        PeriodicTask.objects.update_or_create(
            name=name, defaults={"task": task, "interval": every_15s, "last_run_at": last}
        )
    page = operator_client.get("/health/").content.decode()
    assert 'data-job="audit-deliver-sinks" data-state="on_time"' in page
    assert 'data-job="runs-sweep" data-state="late"' in page
    assert 'data-job="lifecycle-backup" data-state="never"' in page  # beat has not recorded sending it
