"""The implicit direction marks (U+200F RIGHT-TO-LEFT MARK, U+200E LRM, U+061C ARABIC LETTER MARK)
are text-direction characters too (foundry/text.py): the approval card shows them in a model's
arguments escaped, so it reads as the call that will be made, and an approval comment holding one
is refused (docs/runs.md). Only the embeddings, overrides and isolates were known before."""

import pytest
from django_tenants.utils import schema_context

from apps.runs.models import Approval, Run
from tests.conftest import client_for
from tests.runs.conftest import FINANCE, TRIAGE, deploy
from tests.runs.test_api import client, post, waiting_run

RLM = "\u200f"


def _pending_card(html: str) -> str:
    start = html.index('data-testid="pending-approval"')
    return html[start : html.index("</section>", start)]


def test_the_approval_card_shows_a_right_to_left_mark_in_the_arguments_escaped(acme):
    """With RLMs around `0009 3214`, a browser draws it as `3214 0009` (the digits around the
    space become a right-to-left run): the approver reads another account number than the one the
    call will use. Expected: the mark shown escaped (`\\u200f`), as U+202E is."""
    triage = deploy(acme, FINANCE, TRIAGE)
    run = waiting_run(acme, triage)
    with schema_context("acme"):
        Approval.objects.filter(run=run).update(
            arguments={"amount": 25000, "payee": f"ACME Ltd {RLM}0009 3214{RLM} 0000 89ED"}
        )
    response = client_for(acme, "operator@acme.test").get(f"/runs/{run.pk}/")
    assert response.status_code == 200
    card = _pending_card(response.content.decode())
    assert RLM not in card and "\\u200f0009 3214\\u200f" in card


@pytest.mark.parametrize("mark", ["\u200f", "\u200e", "\u061c"], ids=["RLM", "LRM", "ALM"])
def test_an_api_approval_comment_with_a_direction_mark_is_refused(acme, mark):
    """Expected: 400 comment_invalid and the approval still pending; today the comment is stored
    and the run approved."""
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
