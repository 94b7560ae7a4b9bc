"""The usage pages: the workspace's (charts as SVG with every name escaped, quotas, top agents,
budgets set by admins only) holds its own usage only; the operators' platform-wide page is for
operators on the platform host only."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.billing.models import Budget
from apps.billing.quotas import budgets_of
from apps.billing.rls import usage_scope
from apps.billing.rollups import usage_rollup
from apps.runs.usage import usage_record
from tests.billing.test_rollups import ledger_add
from tests.conftest import audit_events, client_for

XSS = "<script>alert(1)</script>"


@pytest.fixture
def recent(acme, globex):
    now = timezone.now()
    ledger_add(acme, agent=XSS, model="m&m", when=now)
    ledger_add(acme, agent="alpha", when=now - timedelta(days=1))
    usage_rollup(tenant_id=acme.pk, day=(now - timedelta(days=1)).date())
    ledger_add(globex, agent="globex-secret-agent", model="globex-model", tokens=(10**6, 1, 0), when=now)
    with schema_context("acme"):  # through the ledger's writer, so this month's totals count it
        usage_record(tenant_id=acme.pk, project="p", agent="alpha", run_id=None, step=None, provider="openai",
                     model="m1", input_tokens=240, output_tokens=10)  # fmt: skip


def test_the_page_draws_svg_charts_with_every_name_escaped(acme, recent):
    response = client_for(acme, "viewer@acme.test").get("/usage/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') == 2
    assert 'role="img"' in html and "<title" in html and 'class="legend"' in html
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    response = client_for(acme, "viewer@acme.test").get("/usage/", {"by": "model", "days": "7"})
    assert "openai/m&amp;m" in response.content.decode()
    assert "openai/m&m" not in response.content.decode()


def test_the_page_shows_this_months_totals_quotas_and_top_agents(acme, recent):
    with usage_scope(acme.pk):
        Budget.objects.create(tenant_id=acme.pk, project="", monthly_tokens=1000, updated_by="t")
    html = client_for(acme, "owner@acme.test").get("/usage/").content.decode()
    assert "The workspace&#x27;s monthly budget of 1,000 tokens" in html
    assert 'value="25.0"' in html  # 250 of 1000 tokens
    assert 'data-testid="top-agents"' in html and "<code>alpha</code>" in html


def test_a_workspace_page_never_shows_another_workspace(acme, globex, recent):
    html = client_for(acme, "owner@acme.test").get("/usage/", {"days": "90"}).content.decode()
    html += client_for(acme, "owner@acme.test").get("/usage/", {"by": "model"}).content.decode()
    assert "globex" not in html.lower()
    assert 'data-testid="platform-usage"' not in html  # a workspace host serves its own page only


@pytest.mark.parametrize("query", ["by=tenant_id", "by=", "days=5", "days=abc", "by=<b>"])
def test_bad_chart_options_are_400s(acme, query):
    response = client_for(acme, "viewer@acme.test").get(f"/usage/?{query}")
    expected = 200 if query == "by=" else 400
    assert response.status_code == expected


def test_an_admin_sets_a_budget(acme):
    client = client_for(acme, "admin@acme.test")
    response = client.post("/usage/budgets/", {"project": "billing", "monthly_tokens": "5000", "monthly_cost_usd": "",
                                               "on_exhausted": "approve"})  # fmt: skip
    assert response.status_code == 302
    budget = budgets_of(acme.pk)["billing"]
    assert (budget.monthly_tokens, budget.monthly_cost_usd, budget.on_exhausted) == (5000, None, "approve")
    assert len(audit_events("acme", action="budget.set")) == 1


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"project": "Bad Name", "monthly_tokens": "1"}, "A project name"),
        ({"project": "", "monthly_tokens": "-1"}, "tokens a month"),
        ({"project": "", "monthly_cost_usd": "lots"}, "An amount of USD"),
        ({"project": "", "monthly_tokens": "1", "on_exhausted": "later"}, "One of stop"),
    ],
)
def test_a_bad_budget_is_a_form_error_that_sets_nothing(acme, fields, code):
    response = client_for(acme, "admin@acme.test").post("/usage/budgets/", fields)
    assert response.status_code == 400
    assert code in response.content.decode()
    assert budgets_of(acme.pk) == {}


@pytest.mark.parametrize("role", ["viewer", "developer", "operator"])
def test_only_admins_set_budgets(acme, role):
    client = client_for(acme, f"{role}@acme.test")
    assert 'data-testid="budget-form"' not in client.get("/usage/").content.decode()
    response = client.post("/usage/budgets/", {"project": "", "monthly_tokens": "1"})
    assert response.status_code == 403
    assert budgets_of(acme.pk) == {}


def test_signed_out_visitors_are_sent_to_sign_in(acme):
    assert client_for(acme).get("/usage/").status_code == 302


def test_operators_see_every_workspace_this_month(operator_client, acme, globex, recent):
    response = operator_client.get("/usage/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('class="chart"') == 2
    assert "Usage across workspaces" in html
    # A page at a time, largest first: workspaces other tests left with more usage may come first.
    seen, number = set(re.findall(r'data-tenant="([^"]+)"', html)), 1
    while not {"acme", "globex"} <= seen:
        number += 1
        page = operator_client.get(f"/usage/?page={number}").content.decode()
        shown = set(re.findall(r'data-tenant="([^"]+)"', page))
        assert shown - seen, f"acme and globex are on none of {number - 1} pages"  # past the last: the last again
        seen |= shown


def test_the_platform_usage_page_is_for_operators_only(db, acme):
    with schema_context("public"):
        User.objects.create_user("notstaff@platform.test", "x-long-password-1", is_staff=False)
    assert client_for(None, "notstaff@platform.test").get("/usage/").status_code == 403
    assert client_for(None).get("/usage/").status_code == 302
    # On a workspace host, /usage/ is that workspace's own page, never the platform's.
    html = client_for(acme, "owner@acme.test").get("/usage/").content.decode()
    assert "Usage across workspaces" not in html


def test_quota_shares_handle_a_zero_budget(acme, recent):
    with usage_scope(acme.pk):
        Budget.objects.create(tenant_id=acme.pk, project="", monthly_cost_usd=Decimal("0"), updated_by="t")
    response = client_for(acme, "owner@acme.test").get("/usage/")
    assert response.status_code == 200


def test_each_chart_has_its_figures_as_a_table_per_day_and_series(acme, globex):
    """WCAG 1.4.1: which agent a bar segment is was told by colour (and the legend's) alone; the
    figures are also a table under each chart, a day per row and an agent per column, in text."""
    now = timezone.now()
    ledger_add(acme, agent="alpha", when=now, tokens=(1000, 200, 0))
    ledger_add(acme, agent="bravo", when=now - timedelta(days=1), tokens=(30, 4, 0))
    ledger_add(globex, agent="globex-secret-agent", when=now)
    html = client_for(acme, "viewer@acme.test").get("/usage/", {"days": "7"}).content.decode()
    table = re.search(r'<details class="chart-data" data-testid="chart-tokens-table">.*?</details>', html, re.S).group(
        0
    )
    head = re.findall(r'<th scope="col"[^>]*>([^<]*)</th>', table)
    assert head == ["Day", "alpha", "bravo", "Total"]
    rows = {
        re.search(r'<th scope="row">([^<]*)</th>', row).group(1): re.findall(r'<td class="num">([^<]*)</td>', row)
        for row in re.findall(r"<tr><th scope=\"row\">.*?</tr>", table)
    }
    assert len(rows) == 7
    assert rows[f"{now:%m-%d}"] == ["1.2k", "0", "1.2k"]
    assert rows[f"{now - timedelta(days=1):%m-%d}"] == ["0", "34", "34"]
    assert "globex" not in html
