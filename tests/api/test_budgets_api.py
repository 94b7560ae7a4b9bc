"""/api/v1/budgets: set, read with this month's use of every cap, refuse bad input, and keep to
the caller's workspace."""

import pytest
from django_tenants.utils import schema_context

from apps.billing.quotas import budgets_of
from apps.runs.usage import usage_record
from tests.api.conftest import api, issue


def test_an_admin_sets_a_budget_and_everyone_sees_its_use(acme, acme_admin):
    with schema_context("acme"):
        usage_record(tenant_id=acme.pk, project="billing", agent="a", run_id=None, step=None, provider="s",
                     model="m", input_tokens=240, output_tokens=10)  # fmt: skip
    answer = acme_admin.put(
        "/api/v1/budgets",
        {"project": "billing", "monthly_tokens": 1000, "monthly_cost_usd": "12.5", "on_exhausted": "approve"},
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.content
    viewer = api(acme, issue(acme, role="viewer", scopes=["read"]))
    body = viewer.get("/api/v1/budgets").json()
    assert body["budgets"] == [
        {
            "project": "billing",
            "monthly_tokens": 1000,
            "monthly_cost_usd": "12.50",
            "on_exhausted": "approve",
            "updated_by": body["budgets"][0]["updated_by"],
            "updated_at": body["budgets"][0]["updated_at"],
        }
    ]
    tokens = next(c for c in body["caps"] if c["project"] == "billing" and c["measure"] == "tokens")
    assert (tokens["limit"], tokens["used"], tokens["percent"], tokens["approvable"]) == (
        "1000.00",
        "250.00000000",
        25.0,
        True,
    )
    # Both amounts null: removed.
    acme_admin.put("/api/v1/budgets", {"project": "billing"}, content_type="application/json")
    assert acme_admin.get("/api/v1/budgets").json()["budgets"] == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"project": "", "monthly_tokens": -5}, "budget_invalid"),
        ({"project": "", "monthly_cost_usd": "-1"}, "budget_invalid"),
        ({"project": "", "monthly_cost_usd": "Infinity"}, "budget_invalid"),
        ({"project": "", "monthly_cost_usd": "0.004"}, "budget_invalid"),  # not rounded to a 0.00 budget
        ({"project": "", "monthly_tokens": 10**15}, "budget_invalid"),
        ({"project": "../x", "monthly_tokens": 1}, "project_invalid"),
        ({"project": "", "monthly_tokens": 1, "on_exhausted": "later"}, "on_exhausted_invalid"),
        ({"project": "", "monthly_tokens": "lots"}, "invalid"),
        ({"monthly_tokens": 1}, "required"),
        ({"project": ["x"], "monthly_tokens": 1}, "invalid"),
    ],
)
def test_bad_budgets_are_400s_that_change_nothing(acme, acme_admin, body, code):
    answer = acme_admin.put("/api/v1/budgets", body, content_type="application/json")
    assert answer.status_code == 400, answer.content
    assert code in answer.content.decode()
    assert budgets_of(acme.pk) == {}


def test_a_workspace_sees_and_sets_only_its_own_budgets(acme, globex, acme_admin, globex_admin):
    acme_admin.put("/api/v1/budgets", {"project": "", "monthly_tokens": 77}, content_type="application/json")
    assert globex_admin.get("/api/v1/budgets").json()["budgets"] == []
    # globex setting its own budget for the same project leaves acme's as it was.
    globex_admin.put("/api/v1/budgets", {"project": "", "monthly_tokens": 5}, content_type="application/json")
    assert [b["monthly_tokens"] for b in acme_admin.get("/api/v1/budgets").json()["budgets"]] == [77]
    # acme's token on globex's host is not a globex credential.
    answer = api(globex, issue(acme)).put(
        "/api/v1/budgets", {"project": "", "monthly_tokens": 1}, content_type="application/json"
    )
    assert answer.status_code == 401
    assert budgets_of(globex.pk)[""].monthly_tokens == 5
