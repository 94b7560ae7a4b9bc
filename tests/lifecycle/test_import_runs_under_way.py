"""A run under way in a workspace is not resumed in a copy imported from its archive (found by the
round-trip review): the source goes on with it, and a copy taking it on too made its tool calls a
second time — a call waiting for approval in both, approved in each, was made twice."""

import io
import json
import uuid

from django_tenants.utils import schema_context

from apps.lifecycle.archive import IMPORTED_RUN_MESSAGE, tenant_import
from apps.runs.models import Approval, Run
from tests.api.conftest import api, issue
from tests.lifecycle.test_archive import archive_of, signing, stocked  # noqa: F401 -- fixtures


def test_a_run_waiting_for_approval_in_the_source_is_cancelled_in_the_copy(stocked):  # noqa: F811
    data, _ = archive_of(stocked)
    copy = tenant_import(io.BytesIO(data), slug=f"r{uuid.uuid4().hex[:10]}")
    with schema_context(stocked.schema_name):
        waiting = Run.objects.get(status=Run.Status.WAITING_APPROVAL)
    with schema_context(copy.schema_name):
        run = Run.objects.get(pk=waiting.pk)
        approval = Approval.objects.get(run=run)
    assert (run.status, run.reason, run.message) == ("cancelled", "imported", IMPORTED_RUN_MESSAGE)
    assert run.finished_at is not None
    assert approval.decision == Approval.Decision.CANCELLED
    approved = api(copy, issue(copy)).post(
        f"/api/v1/runs/{run.pk}/approve", json.dumps({"step": approval.step}), content_type="application/json"
    )
    assert approved.status_code == 409 and approved.json()["error"]["code"] == "run_not_waiting"
    with schema_context(copy.schema_name):
        assert Run.objects.get(pk=run.pk).status == "cancelled"
    with schema_context(stocked.schema_name):
        assert Run.objects.get(pk=waiting.pk).status == Run.Status.WAITING_APPROVAL  # the source's own
