"""Retention (docs/retention.md): a pass cut short is finished by the next, and a period too
large for a retention period is named so on the console."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.lifecycle import retention
from apps.lifecycle.models import RetentionPolicy
from apps.lifecycle.retention import RetentionSaver, retention_apply
from apps.runs.checkpoints import checkpoint_connection
from apps.runs.models import Run
from apps.runs.services import run_start
from tests.conftest import audit_events, client_for, tenant_user
from tests.lifecycle.test_retention import checkpoint_rows, final_state, policy_set
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy

# Blobs of the thread that no checkpoint left in it names: nothing can ever read them again.
_UNREFERENCED_BLOBS = """
SELECT b.channel FROM "{schema}".checkpoint_blobs b
 WHERE b.thread_id = %s AND NOT EXISTS (
    SELECT 1 FROM "{schema}".checkpoints c
     WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns
       AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version)
"""


def unreferenced_blobs(tenant, run) -> list[str]:
    with checkpoint_connection().cursor() as cursor:
        cursor.execute(_UNREFERENCED_BLOBS.format(schema=tenant.schema_name), [str(run.pk)])
        return sorted(row["channel"] for row in cursor.fetchall())


def test_a_checkpoint_prune_cut_short_before_its_blobs_is_finished_by_the_next_pass(acme, monkeypatch):
    """docs/retention.md, "Small batches": "A pass cut short leaves nothing the next pass does not
    finish." One cut short after a finished run's checkpoints were pruned to the final one, before
    "the blobs no kept checkpoint names", left them for good: the next pass skipped the thread,
    which had one checkpoint (the `__start__` blob holds the run's input). It deletes them."""
    agent = deploy(acme, FINANCE, agent_yaml())
    owner = tenant_user(acme, "owner@acme.test")
    script = [{"tool_call": {"tool": "find_invoices", "arguments": {"question": "q"}}}, {"respond": "done"}]
    with schema_context(acme.schema_name):
        run = run_start(actor=owner, agent=agent, input="Old work.", script=script)
    run = advance(run, acme.schema_name)
    assert run.status == "succeeded", run.message
    now = timezone.now()
    with schema_context(acme.schema_name):
        Run.objects.filter(pk=run.pk).update(finished_at=now - timedelta(days=40))
    policy_set(acme, checkpoints_days=30)
    state = final_state(acme, run)

    delete = RetentionSaver._delete

    def killed_at_the_blobs(self, statement, params, batch_size):
        if statement is retention._UNREFERENCED_BLOBS_DELETE:
            raise ConnectionError("the worker was killed")
        return delete(self, statement, params, batch_size)

    monkeypatch.setattr(RetentionSaver, "_delete", killed_at_the_blobs)
    with pytest.raises(ConnectionError):
        retention_apply(tenant=acme, now=now)
    monkeypatch.setattr(RetentionSaver, "_delete", delete)
    assert checkpoint_rows(acme, run)["checkpoints"] == 1
    assert unreferenced_blobs(acme, run)  # what the cut pass left

    retention_apply(tenant=acme, now=now)  # the next night's pass

    assert final_state(acme, run) == state
    assert unreferenced_blobs(acme, run) == [], "blobs no checkpoint names are left behind for ever"


def test_the_console_refuses_a_ten_digit_period_as_too_large_not_as_no_whole_number(acme):
    """docs/retention.md, "Errors": above 36500 days is `days_too_large`. Ten digits were handed to
    the service as text and refused `days_invalid` ("a whole number of days"), as the API does not."""
    client = client_for(acme, "owner@acme.test")
    response = client.post("/settings/retention/", {"runs_days": "1000000000"})
    assert response.status_code == 400
    assert b"at most 36500 days" in response.content, "a ten-digit period is not refused as too large"
    with schema_context(acme.schema_name):
        assert RetentionPolicy.objects.get().runs_days is None
    assert not audit_events(acme.schema_name, action="retention.updated")
