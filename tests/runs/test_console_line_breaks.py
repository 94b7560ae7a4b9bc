"""Console text areas: browsers submit each line break as CRLF (HTML spec) and count it as one
character against the textarea's maxlength; the server must count what the user typed."""

import re

from django_tenants.utils import schema_context

from apps.runs.models import Approval, Run
from apps.runs.services import MAX_COMMENT_CHARS, MAX_INPUT_CHARS
from tests.conftest import client_for
from tests.runs.test_api import waiting_run


def test_a_run_input_at_the_limit_typed_with_line_breaks_is_accepted(acme, triage):
    client = client_for(acme, "operator@acme.test")
    form = client.get("/runs/new/").content.decode()
    assert re.search(rf'<textarea[^>]*maxlength="{MAX_INPUT_CHARS}"', form)  # what the browser enforces
    typed = ("x" * 99 + "\n") * (MAX_INPUT_CHARS // 100)  # exactly the limit, as typed
    response = client.post("/runs/new/", {"agent": "invoice-triage", "input": typed.replace("\n", "\r\n")})
    assert response.status_code == 302, re.findall(r'<ul class="errorlist".*?</ul>', response.content.decode())
    with schema_context("acme"):
        assert Run.objects.get().input == typed


def test_an_approval_comment_at_the_limit_typed_with_line_breaks_is_accepted_and_stored_as_typed(acme, triage):
    run = waiting_run(acme, triage)
    client = client_for(acme, "operator@acme.test")
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert re.search(rf'<textarea[^>]*maxlength="{MAX_COMMENT_CHARS}"', page)
    typed = ("y" * 9 + "\n") * (MAX_COMMENT_CHARS // 10 - 1) + "y" * 10
    response = client.post(
        f"/runs/{run.pk}/decide/", {"decision": "approve", "step": "2", "comment": typed.replace("\n", "\r\n")}
    )
    assert response.status_code == 302, re.findall(r'<ul class="errorlist".*?</ul>', response.content.decode())
    with schema_context("acme"):
        approval = Approval.objects.get(run=run)
    assert approval.decision == "approved"
    assert approval.comment == typed  # as the API would store it: LF, not the browser's CRLF
