"""A run's database and Redis errors are retried DB_RETRIES times, counted apart from its waits for
a slot or a lock (apps/runs/tasks.py db_failures): a run that waited many turns for a slot still
retries a transient database error."""

from django.db import OperationalError

import apps.runs.tasks as run_tasks

RUN = "00000000-0000-0000-0000-000000000000"


def _flaky_once(calls):
    def advance(run_id):
        calls.append(run_id)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return "finished"

    return advance


def test_control_a_fresh_run_retries_a_transient_database_error(acme, monkeypatch):
    calls = []
    monkeypatch.setattr(run_tasks, "run_advance_admitted", _flaky_once(calls))
    run_tasks.run_execute.apply(args=[acme.schema_name, RUN]).get(propagate=False)
    assert len(calls) == 2


def test_a_run_that_waited_for_a_slot_still_retries_a_transient_database_error(acme, monkeypatch):
    calls = []
    monkeypatch.setattr(run_tasks, "run_advance_admitted", _flaky_once(calls))
    # The message as a worker sees it after DB_RETRIES slot waits (each a self.retry).
    run_tasks.run_execute.apply(args=[acme.schema_name, RUN], retries=run_tasks.DB_RETRIES).get(propagate=False)
    assert len(calls) == 2, (
        f"after {run_tasks.DB_RETRIES} waits for a slot, one transient database error ended the task "
        f"({len(calls)} call): the slot waits spent the database-error budget"
    )
