"""A policy lengthened while a pass runs applies from the pass's next batch, for every kind
(docs/retention.md). Only the audit kind re-read the policy; the others read it once when the pass
started, so an admin lengthening `runs_days` to keep runs an investigation needs saw a nightly pass
over a large workspace go on deleting by the old period. Here the pass is held on its first batch
(a row lock), the period is lengthened and committed, and the pass, let go, must select its next
batch by the new one. Found by the retention review."""

import threading
import time
from datetime import timedelta

import psycopg
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.lifecycle.retention import retention_apply
from apps.runs.models import Run
from tests.lifecycle.test_retention import make_run, policy_set
from tests.runs.conftest import FINANCE, TRIAGE, deploy


def _blocked_on_runs_delete(monitor) -> bool:
    with monitor.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE %s AND pid <> pg_backend_pid()",
            ["%DELETE FROM runs_approval%"],
        )
        return cursor.fetchone()[0] > 0


def test_runs_days_lengthened_during_a_pass_stops_it_deleting_by_the_old_period(fresh_tenant, django_db_blocker):
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        agent = deploy(tenant, FINANCE, TRIAGE)
        policy_set(tenant, runs_days=30)
        now = timezone.now()
        a = make_run(tenant, agent, finished_at=now)
        b = make_run(tenant, agent, finished_at=now)
        first, second = sorted([a, b], key=lambda run: run.pk)  # the pass takes roots by id
        with schema_context(tenant.schema_name):
            Run.objects.filter(pk=first.pk).update(finished_at=now - timedelta(days=400))
            Run.objects.filter(pk=second.pk).update(finished_at=now - timedelta(days=60))

        params = connection.get_connection_params()
        blocker = psycopg.connect(**params)  # holds the first run's row: the pass waits on its first batch
        monitor = psycopg.connect(**params, autocommit=True)
        errors: list[BaseException] = []
        try:
            with blocker.cursor() as cursor:
                cursor.execute(f'SELECT 1 FROM "{tenant.schema_name}".runs_run WHERE id = %s FOR UPDATE', [first.pk])

            def sweep():
                try:
                    retention_apply(tenant=tenant, now=now, batch_size=1)
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)
                finally:
                    connection.close()

            def lengthen():
                try:
                    policy_set(tenant, runs_days=365)  # the 60-day-old run is to be kept from now on
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)
                finally:
                    connection.close()

            passing = threading.Thread(target=sweep)
            passing.start()
            deadline = time.monotonic() + 30
            while not _blocked_on_runs_delete(monitor):
                assert time.monotonic() < deadline, "the pass never reached its first batch"
                time.sleep(0.05)
            changing = threading.Thread(target=lengthen)
            changing.start()
            changing.join(timeout=3)  # committed at once (or waits for the batch in flight)
            blocker.commit()
            passing.join(timeout=60)
            changing.join(timeout=60)
        finally:
            blocker.close()
            monitor.close()
        assert not errors, errors

        with schema_context(tenant.schema_name):
            assert Run.objects.filter(pk=second.pk).exists(), (
                "a run 60 days old was deleted after runs_days was lengthened to 365 and committed:"
                " the pass went on by the period it read when it started"
            )
