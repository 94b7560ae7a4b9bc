"""Cross-surface: a decision comment is judged alike on the console, the API and MCP."""

from django_tenants.utils import schema_context

from apps.runs.models import Approval
from tests.api.conftest import api, issue
from tests.conftest import client_for
from tests.runs.conftest import triage  # noqa: F401 - fixture
from tests.runs.test_api import waiting_run

# 2,000 characters once its trailing line break is removed: docs/runs.md ("a comment of up to
# 2,000 readable characters once surrounding spaces are removed").
PADDED = "x" * 2000 + "\n"


def test_the_console_takes_the_padded_2000_character_comment_the_api_and_mcp_take(acme, triage):  # noqa: F811
    """docs/runs.md: a comment is at most 2,000 characters *once surrounding spaces are removed*,
    and the MCP and API descriptions say it is checked "as for the API and the console". The API
    approves with this comment; the console's form (DecisionForm, max_length on the raw text)
    refuses the same decision with a 400, so the approver on the console cannot do what the API
    and MCP let the same person do."""
    api_run, console_run = waiting_run(acme, triage), waiting_run(acme, triage)
    by_api = api(acme, issue(acme)).post(
        f"/api/v1/runs/{api_run.pk}/approve", {"comment": PADDED, "step": 2}, content_type="application/json"
    )
    assert by_api.status_code == 200, by_api.content

    by_console = client_for(acme, "admin@acme.test").post(
        f"/runs/{console_run.pk}/decide/", {"decision": "approve", "step": 2, "comment": PADDED}
    )
    with schema_context("acme"):
        decision = Approval.objects.get(run=console_run).decision
    assert by_console.status_code == 302 and decision == Approval.Decision.APPROVED, by_console.status_code
