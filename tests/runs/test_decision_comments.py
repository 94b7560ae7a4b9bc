"""How a decision's comment is checked (docs/runs.md, "Approvals"): as given, then stripped.
Python's str.strip() takes several control characters for spaces (U+0085 NEL, U+001C..U+001F,
U+000B, U+000C): checked after stripping, a comment starting or ending with one was taken and
stored other than written."""

import pytest
from django_tenants.utils import schema_context

from apps.runs.models import Approval, Run
from apps.runs.services import run_decide
from foundry.errors import ServiceError
from tests.api.conftest import api, issue
from tests.conftest import audit_events, tenant_user
from tests.runs.conftest import triage  # noqa: F401 - fixture
from tests.runs.test_api import waiting_run


@pytest.mark.parametrize("comment", ["\x85Approved", "Approved\x1f", "\x0cApproved", "\x1c"])
def test_a_comment_with_a_control_character_at_its_end_is_refused(acme, triage, comment):  # noqa: F811
    """Refused with comment_invalid, the approval left pending and nothing audited."""
    run = waiting_run(acme, triage)
    with schema_context("acme"):
        with pytest.raises(ServiceError) as refused:
            run_decide(actor=tenant_user(acme, "admin@acme.test"), run=run, approved=True, comment=comment)
        assert refused.value.code == "comment_invalid"
        assert Approval.objects.get(run=run).decision == Approval.Decision.PENDING
        assert Run.objects.get(pk=run.pk).status == Run.Status.WAITING_APPROVAL
    assert not audit_events("acme", action="run.approve", data={"run": str(run.pk)})


@pytest.mark.parametrize("comment", ["\x85Approved", "Approved\x1f"])
def test_the_api_refuses_a_comment_with_a_control_character_at_its_end(acme, triage, comment):  # noqa: F811
    """The API hands the comment to the service untrimmed (DRF trims with str.strip() too)."""
    run = waiting_run(acme, triage)
    response = api(acme, issue(acme)).post(
        f"/api/v1/runs/{run.pk}/approve", {"comment": comment}, content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "comment_invalid", response.content
    with schema_context("acme"):
        assert Approval.objects.get(run=run).decision == Approval.Decision.PENDING
