"""Console pages and API lists as a workspace's data grows: SQL statements per request stay the
same at 5 rows and at 200, no list loads a version's YAML or content (each up to 1 MiB) to show
its number, and every console list of a growing collection is shown a page at a time."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from apps.runs.models import Approval, Run
from apps.runs.usage import usage_record
from apps.tenants.limits import limits_cache_clear
from apps.tenants.models import Tenant
from tests.api.conftest import api, issue
from tests.conftest import client_for
from tests.data_growth import (
    members_add,
    queries_of,
    runs_add,
    sql_of,
    steps_add,
    tenants_add,
    tokens_add,
    versions_add,
)
from tests.runs.conftest import FINANCE, TRIAGE, deploy

pytestmark = pytest.mark.django_db

# The console's own page size for growing lists (runs, audit events, exports show 50 a page).
CONSOLE_PAGE_BOUND = 100


# --- N+1 ----------------------------------------------------------------------------------------


def test_it_reads_platform_usage_in_queries_independent_of_tenant_count(operator_client):
    """The operator's usage page reads every workspace's limits in one statement (it read them
    one workspace at a time: 24 statements with 7 tenants, 219 with 202)."""

    def count() -> int:
        limits_cache_clear()  # as after the 2-second TTL
        n, response = queries_of(operator_client, "/usage/")
        assert response.status_code == 200
        return n

    tenants_add(5)
    small = count()
    tenants_add(60)
    assert count() == small


# --- heavy version columns in lists -------------------------------------------------------------

HEAVY = re.compile(r'"(?:catalog_version|T\d+|U\d+)"\."(?:source|content)"')


def big_domain(terms: int = 4000) -> str:
    """finance.yaml with a large glossary (~730 KB: within the 1 MiB limit and the schema's 5000 terms)."""
    lines = "".join(
        f"    term-{i:06d}: " + "A glossary definition long enough to be realistic. " * 3 + f"number {i}.\n"
        for i in range(terms)
    )
    return FINANCE.replace("  glossary:\n", "  glossary:\n" + lines, 1)


def _list_statement(sqls: list[str], table: str) -> str:
    listed = [s for s in sqls if re.search(rf'\bFROM "{table}"', s) and s.lstrip().startswith("SELECT")]
    assert listed, f"no SELECT from {table} among {len(sqls)} statements"
    return listed[-1]


@pytest.fixture
def grown(acme):
    """acme with invoice-triage deployed on a ~730 KB domain, 40 runs, 40 more agent versions
    and 5 more deployments."""
    from apps.catalog.services import agent_deploy
    from tests.conftest import tenant_user

    agent = deploy(acme, big_domain(), TRIAGE)
    runs_add(acme, agent, 40)
    versions_add(acme, agent, 40)
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        for number in range(2, 7):
            agent_deploy(actor=owner, document=agent, number=number)
    return agent


@pytest.mark.parametrize(
    ("url", "table"),
    [
        ("/api/v1/runs?page_size=1000", "runs_run"),
        ("/api/v1/agents/invoice-triage/versions?page_size=1000", "catalog_version"),
        ("/api/v1/agents/invoice-triage/deployments?page_size=1000", "catalog_deployment"),
        ("/runs/", "runs_run"),
    ],
    ids=["api-runs", "api-versions", "api-deployments", "console-runs"],
)
def test_it_lists_without_loading_each_rows_yaml_and_content(acme, grown, url, table):
    """Lists print a version's number and name, never its body: the runs list loaded, per row,
    the manifest's and the pinned DIS's YAML and content (GET /api/v1/runs?page_size=500 took
    3.7 s with a 730 KB DIS against 0.19 s with the 2 KB example, for the same answer)."""
    client = api(acme, issue(acme)) if url.startswith("/api/") else client_for(acme, "owner@acme.test")
    sqls, response = sql_of(client, url)
    assert response.status_code == 200
    statement = _list_statement(sqls, table)
    assert not HEAVY.findall(statement), statement[:2000]


def test_mcp_list_runs_does_not_load_each_runs_yaml_and_content(acme, grown):
    """MCP `list_runs` shares the REST list's query: no version bodies either."""
    from apps.runs.apis import RUNS
    from foundry.mcp.server import _list_params, _runs

    with schema_context(acme.schema_name), CaptureQueriesContext(connection) as captured:
        page = RUNS.page(_list_params("mcp:list_runs", page_size=1000), _runs())
    assert len(page.items) == 40
    statement = _list_statement([q["sql"] for q in captured.captured_queries], "runs_run")
    assert not HEAVY.findall(statement), statement[:2000]


def test_agent_page_does_not_load_every_versions_yaml_and_content(acme, grown):
    """The console's agent page lists its versions without their bodies (1.5 s per view with
    301 versions on a 730 KB DIS before); the selected version's source is read on its own."""
    sqls, response = sql_of(client_for(acme, "owner@acme.test"), "/agents/invoice-triage/")
    assert response.status_code == 200
    listed = [s for s in sqls if re.search(r'\bFROM "catalog_version"', s) and "ORDER BY" in s and "DESC" in s]
    assert listed
    assert not HEAVY.findall(listed[-1]), listed[-1][:2000]


# --- unbounded console lists --------------------------------------------------------------------


def _rows(response, pattern: str) -> int:
    return len(re.findall(pattern, response.content.decode()))


def test_agent_page_bounds_the_versions_it_lists(acme, owner_client):
    """An agent's versions are shown a page at a time (every version was a row, and two
    <select>s an option each; CI publishing daily makes thousands a year)."""
    agent = deploy(acme, FINANCE, TRIAGE)
    versions_add(acme, agent, 400)
    response = owner_client.get("/agents/invoice-triage/")
    assert response.status_code == 200
    assert _rows(response, r'<tr data-version="') <= CONSOLE_PAGE_BOUND


def test_members_page_bounds_the_members_it_lists(acme, owner_client):
    """Members are shown a page at a time (just-in-time SSO sign-up makes thousands)."""
    members_add(acme, 400)
    response = owner_client.get("/members/")
    assert response.status_code == 200
    assert _rows(response, r'<tr id="member-') <= CONSOLE_PAGE_BOUND


def test_tokens_page_bounds_the_tokens_it_lists(acme, owner_client):
    """Tokens, newest first, a page at a time (revoked and expired ones are kept)."""
    tokens_add(acme, 400)
    response = owner_client.get("/settings/tokens/")
    assert response.status_code == 200
    assert _rows(response, r'<tr data-prefix="') <= CONSOLE_PAGE_BOUND


def test_operator_tenant_list_bounds_the_tenants_it_lists(operator_client):
    """The operator's list of workspaces is shown a page at a time."""
    tenants_add(400)
    response = operator_client.get("/")
    assert response.status_code == 200
    assert _rows(response, r'<tr data-slug="') <= CONSOLE_PAGE_BOUND


def test_platform_usage_page_bounds_the_tenants_it_lists(operator_client, acme):
    """The operators' usage page lists the workspaces a page at a time, those that used the most
    this month first: a workspace with usage is on page 1 though 400 slugs sort before it."""
    tenants_add(400)
    with schema_context("public"):
        Tenant.objects.filter(pk=acme.pk).update(slug="zz-acme")
    with schema_context(acme.schema_name):
        usage_record(tenant_id=acme.pk, project="p", agent="a", run_id=None, step=None, provider="openai",
                     model="m1", input_tokens=240, output_tokens=10)  # fmt: skip
    response = operator_client.get("/usage/")
    assert response.status_code == 200
    html = response.content.decode()
    assert _rows(response, r'<tr data-tenant="') <= CONSOLE_PAGE_BOUND
    assert html.index('data-tenant="zz-acme"') < html.index('<tr data-tenant="s')
    second = operator_client.get("/usage/", {"page": "2", "days": "7"})
    assert second.status_code == 200 and 'data-tenant="zz-acme"' not in second.content.decode()
    assert 'href="?days=7&amp;page=1"' in second.content.decode()


# --- the run page's live poll -------------------------------------------------------------------


def test_run_live_poll_with_nothing_new_does_not_load_every_step(acme):
    """A run page's once-a-second poll that has nothing new (204) reads no step: its version
    comes from the run's row, its step count and its approvals (a tab open on a run waiting
    hours for approval read up to 1,000 steps every second)."""
    agent = deploy(acme, FINANCE, TRIAGE)
    (run,) = runs_add(acme, agent, 1)
    steps_add(acme, run, 300)
    with schema_context(acme.schema_name):
        Run.objects.filter(pk=run.pk).update(status=Run.Status.WAITING_APPROVAL)
        Approval.objects.create(run=run, step=301, tool="find_invoices", tool_call_id="c1")
    client = client_for(acme, "owner@acme.test")
    page = client.get(f"/runs/{run.pk}/")
    version = re.search(r'data-version="([0-9a-f]+)"', page.content.decode()).group(1)

    sqls, response = sql_of(client, f"/runs/{run.pk}/live/?v={version}")
    assert response.status_code == 204
    step_reads = [s for s in sqls if re.search(r'\bFROM "runs_step"', s) and '"runs_step"."arguments"' in s]
    assert not step_reads, step_reads[0][:500]


@pytest.mark.parametrize("page", ["abc", "0", "-1", "99999", "1e3", "\uff11"])
def test_a_page_number_that_is_none_shows_the_nearest_page(owner_client, operator_client, page):
    """`?page=` is read leniently on every paged console list: a malformed or out-of-range number
    shows the first or the last page, never an error."""
    for client, path in [(owner_client, "/members/"), (owner_client, "/settings/tokens/"), (owner_client, "/runs/")]:
        assert client.get(path, {"page": page}).status_code == 200, (path, page)
    assert operator_client.get("/", {"page": page}).status_code == 200
