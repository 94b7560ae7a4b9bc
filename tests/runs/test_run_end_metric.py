"""The runs-ended counter counts an end once it is committed: an end rolled back and retried is one
end (docs/observability.md, "Metrics": "Runs ended, by outcome")."""

import contextlib

from django.db import OperationalError
from django_tenants.utils import schema_context
from prometheus_client import REGISTRY

import apps.runs.engine as engine
from apps.billing.services import budget_set
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.runs.conftest import FINANCE, TRIAGE, advance, deploy


def _failed_runs() -> float:
    return REGISTRY.get_sample_value("foundry_runs_finished_total", {"tenant": "acme", "outcome": "failed"}) or 0


def test_a_run_end_rolled_back_and_retried_is_counted_once(acme, monkeypatch, django_capture_on_commit_callbacks):
    """`foundry_runs_finished_total{tenant,outcome}` counts "Runs ended, by outcome"
    (docs/observability.md). docs/runs.md: a run whose database went away while recording its end
    goes back to the queue and is ended by the task's retry. Here a run refused by a zero budget
    fails with `quota_exceeded`; its end and the `quota.exceeded` event commit together, and the
    first attempt's event write fails (OperationalError), so that end is rolled back and the run
    is `queued` again; the retry ends it. One run ended once must count 1, not 2: the counter is
    incremented in `apps/runs/services.py` `_run_end` before the transaction commits."""
    agent = deploy(acme, FINANCE, TRIAGE)
    with schema_context("acme"):
        owner = tenant_user(acme, "owner@acme.test")
        budget_set(actor=owner, tenant_id=acme.pk, project="", monthly_tokens=0, on_exhausted="stop")
        run = run_start(actor=owner, agent=agent, input="Triage invoice INV-1001.")
    before = _failed_runs()
    real = engine.audit_record
    failed_once = []

    def database_lost_once(*args, **kwargs):
        if kwargs.get("action") == "quota.exceeded" and not failed_once:
            failed_once.append(True)
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "audit_record", database_lost_once)
    with django_capture_on_commit_callbacks(execute=True):
        with contextlib.suppress(OperationalError):  # the task's retry (apps/runs/tasks.py) takes it from here
            advance(run, "acme")
        run = advance(run, "acme")
    assert (run.status, run.reason) == ("failed", "quota_exceeded")
    assert _failed_runs() - before == 1
