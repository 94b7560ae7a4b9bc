"""Erasing one person's data (docs/lifecycle.md, "Erasing one person's data") when they approved a
run with their API token, named after them: the platform wrote the token's name as the approver
into the approval row (rewritten), and also into the step's record (`approval.by`, a JSON column
every later export carries) and into the run's checkpoints (the resume value). Both kept the
name: the step's approver is rewritten as the approval's now, and the finished run's checkpoints
holding it are deleted."""

import io
import zipfile

import pytest
from django_tenants.utils import schema_context

from apps.accounts.permissions import Role
from apps.accounts.services import member_add
from apps.lifecycle.archive import tenant_export
from apps.lifecycle.erasure import member_erase
from apps.runs.checkpoints import checkpointer
from apps.runs.models import Approval
from apps.runs.services import run_start
from apps.tokens.services import token_issue
from tests.api.conftest import api
from tests.conftest import tenant_user
from tests.runs.conftest import FINANCE, TRIAGE, advance, deploy

NAME = "Patricia Quinlan"
EMAIL = "pat.quinlan@acme.test"
TOKEN_NAME = f"{NAME}'s laptop"


@pytest.fixture
def approved_by_token(acme):
    """Pat (an admin) approves a run's tool call with her own token, named after her; the run ends."""
    agent = deploy(acme, FINANCE, TRIAGE)
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        pat = member_add(actor=owner, email=EMAIL, role=Role.ADMIN, full_name=NAME)
        token = token_issue(actor=pat, name=TOKEN_NAME, role="admin", scopes=["read", "run"]).plaintext
        run = run_start(actor=owner, agent=agent, input="Look up the 25,000 EUR invoice.")
    run = advance(run, acme.schema_name)
    assert run.status == "waiting_approval"
    answer = api(acme, token).post(f"/api/v1/runs/{run.pk}/approve", {}, content_type="application/json")
    assert answer.status_code == 200, answer.content
    run = advance(run, acme.schema_name)
    assert run.status == "succeeded", run.message
    with schema_context(acme.schema_name):
        assert TOKEN_NAME in Approval.objects.get(run=run).approver
        member_erase(actor=owner, email=EMAIL)
        assert not Approval.objects.filter(approver__icontains=NAME).exists()  # the row is rewritten
    return run


def test_an_export_made_after_the_erasure_holds_no_name_of_the_person(acme, approved_by_token):
    """An archive made after the erasure holds neither the person's email nor their name (its
    `schema/runs_step.ndjson` held `"approval": {"by": "API token ... (Patricia Quinlan's laptop)"}`)."""
    out = io.BytesIO()
    tenant_export(acme, out, record=False)
    with zipfile.ZipFile(out) as archive:
        holding = [name for name in archive.namelist() if NAME.encode() in archive.read(name)]
    assert holding == [], f"the erased person's name is still in {holding}"


def test_the_runs_checkpoints_no_longer_hold_the_persons_name(acme, approved_by_token):
    """Checkpoints holding the email were found, not those holding the token's name."""
    run = approved_by_token
    with schema_context(acme.schema_name):
        holding = checkpointer(acme.schema_name).threads_holding(NAME.encode())
    assert str(run.pk) not in holding, "the erased person's name is still stored in the run's checkpoints"
