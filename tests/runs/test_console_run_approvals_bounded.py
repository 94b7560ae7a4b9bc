"""A run page's once-a-second poll read every approval of the run whole (each call's arguments,
reasons and caps) only to hash their decisions: with 1,000 approvals of ~2 KB arguments, ~2 MB a
poll for every tab open on a waiting run; and the page rendered all of them. Now the poll reads
the decisions alone, and the page shows the latest MAX_APPROVALS_SHOWN decided ones (the API
lists them all)."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from apps.runs.models import Run
from apps.runs.views import MAX_APPROVALS_SHOWN
from tests.conftest import client_for
from tests.data_growth import runs_add, steps_add
from tests.runs.conftest import FINANCE, TRIAGE, deploy

pytestmark = pytest.mark.django_db

DECIDED = MAX_APPROVALS_SHOWN + 50
# Decided approvals of one run (steps 1..n), then one pending at the step after.
_APPROVALS_SQL = (
    "INSERT INTO runs_approval (step, tool, tool_call_id, arguments, reasons, requested_at, decision,"
    " approver, comment, run_id, decided_at)"
    " SELECT g, 'find_invoices', 'c' || g, jsonb_build_object('q', repeat('x', 2000)), '[]', now(),"
    " CASE WHEN g > %s THEN 'pending' ELSE 'approved' END, CASE WHEN g > %s THEN '' ELSE 'owner@acme.test' END,"
    " '', %s, CASE WHEN g > %s THEN NULL ELSE now() END FROM generate_series(1, %s) g"
)


@pytest.fixture
def waiting(acme) -> Run:
    (run,) = runs_add(acme, deploy(acme, FINANCE, TRIAGE), 1)
    steps_add(acme, run, DECIDED + 1)
    with schema_context("acme"), connection.cursor() as cursor:
        cursor.execute(_APPROVALS_SQL, [DECIDED, DECIDED, run.pk, DECIDED, DECIDED + 1])
        Run.objects.filter(pk=run.pk).update(status=Run.Status.WAITING_APPROVAL)
    return run


def test_a_poll_with_nothing_new_reads_the_decisions_alone(acme, waiting):
    client = client_for(acme, "owner@acme.test")
    page = client.get(f"/runs/{waiting.pk}/").content.decode()
    version = re.search(r'data-version="([0-9a-f]+)"', page).group(1)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(f"/runs/{waiting.pk}/live/", {"v": version})
    assert response.status_code == 204
    assert not [q["sql"] for q in captured.captured_queries if '"runs_approval"."arguments"' in q["sql"]]


def test_the_page_shows_the_latest_decisions_and_the_pending_call_whole(acme, waiting):
    html = client_for(acme, "owner@acme.test").get(f"/runs/{waiting.pk}/").content.decode()
    decided = [int(step) for step in re.findall(r'<tr data-step="(\d+)" data-decision="approved"', html)]
    assert decided == list(range(DECIDED - MAX_APPROVALS_SHOWN + 1, DECIDED + 1))
    assert 'data-testid="approvals-hidden"' in html and "The 50 earlier decisions are not shown here" in html
    assert "x" * 2000 in html  # the pending call's arguments, for its approver to read


def test_a_decision_changes_the_version_the_poll_answers_to(acme, waiting):
    client = client_for(acme, "owner@acme.test")
    version = re.search(r'data-version="([0-9a-f]+)"', client.get(f"/runs/{waiting.pk}/").content.decode()).group(1)
    with schema_context("acme"):
        waiting.approvals.filter(decision="pending").update(decision="rejected")
    response = client.get(f"/runs/{waiting.pk}/live/", {"v": version})
    assert response.status_code == 200 and 'data-decision="rejected"' in response.content.decode()
