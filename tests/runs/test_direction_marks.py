"""The implicit direction marks (U+200F RIGHT-TO-LEFT MARK, U+200E LRM, U+061C ARABIC LETTER MARK)
are text-direction characters too (foundry/text.py): the approval card shows them in a model's
arguments escaped, so it reads as the call that will be made (tests/runs/test_console.py), and an
approval comment holding one is refused (docs/runs.md). Only the embeddings, overrides and isolates
were known before."""

import pytest
from django_tenants.utils import schema_context

from apps.runs.models import Approval, Run
from tests.runs.conftest import FINANCE, TRIAGE, deploy
from tests.runs.test_api import client, post, waiting_run


@pytest.mark.parametrize("mark", ["\u200f", "\u200e", "\u061c"], ids=["RLM", "LRM", "ALM"])
def test_an_api_approval_comment_with_a_direction_mark_is_refused(acme, mark):
    """400 comment_invalid, the approval still pending (the comment was stored and the run approved)."""
    triage = deploy(acme, FINANCE, TRIAGE)
    run = waiting_run(acme, triage)
    response = post(
        client(acme, role="operator", scopes=("read", "run")),
        f"/api/v1/runs/{run.pk}/approve",
        {"comment": f"Checked {mark}12 34{mark} with finance"},
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "comment_invalid"
    with schema_context("acme"):
        assert Approval.objects.get(run=run).decision == "pending"
        assert Run.objects.get(pk=run.pk).status == "waiting_approval"
