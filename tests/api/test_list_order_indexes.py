"""The API's keyset lists ordered a `desc` field as `DESC NULLS LAST` (foundry/filtering/ordering.py)
also on NOT NULL columns. No index of runs_run or audit_auditevent has that order (theirs are
`created_at DESC` = NULLS FIRST, and `(tenant_id, seq)` read backwards = `seq DESC NULLS FIRST`),
so each page of the two largest lists — GET /api/v1/runs (and MCP list_runs, which shares it),
GET /api/v1/audit/events and the console's /audit/ page — read and sorted every matching row of
the workspace (118 ms and 66 ms a page at 50,000 rows, growing with the table) instead of
reading 51 rows off an index (0.5 ms and 0.14 ms).

Each test grows one table (generate_series, in the test's transaction), captures the SELECT the
endpoint runs and EXPLAINs it with `enable_sort = off`: a plan that still has a (non-incremental)
Sort node is one no index can serve, whatever the table's size."""

import re

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from apps.audit.scope import rls_scope
from tests.api.conftest import api, issue
from tests.conftest import client_for
from tests.data_growth import runs_add
from tests.runs.conftest import FINANCE, TRIAGE, deploy

pytestmark = pytest.mark.django_db

ROWS = 3_000
FULL_SORT = re.compile(r"^\s*(?:->\s+)?Sort\s+\(", re.MULTILINE)


def listing_statement(client, url: str, table: str, *, page: int = 1) -> str:
    from django.test.utils import CaptureQueriesContext

    for _ in range(page - 1):  # to the page asked for, by each page's token
        token = client.get(url).json()["next_page_token"]
        url += ("&" if "?" in url else "?") + f"page_token={token}"
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    connection.set_schema_to_public()
    assert response.status_code == 200, response.content[:300]
    found = [
        q["sql"]
        for q in captured.captured_queries
        if re.search(rf'\bFROM "{table}"', q["sql"]) and q["sql"].lstrip().startswith("SELECT") and "LIMIT" in q["sql"]
    ]
    assert found, f"no paged SELECT from {table}"
    return found[-1]


def plan_without_sort(sql: str) -> str:
    """The plan PostgreSQL picks when it may sort only if no index gives the order."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET LOCAL enable_sort = on")
    return plan


@pytest.fixture
def many_runs(acme):
    agent = deploy(acme, FINANCE, TRIAGE)
    (seed,) = runs_add(acme, agent, 1)
    with schema_context(acme.schema_name), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO runs_run (id, agent_id, deployment_id, version_id, domain_version_id, project, provider,"
            " model, status, reason, message, input, created_by, step_count, input_tokens, output_tokens,"
            " cached_tokens, recoveries, attempt, interrupted_ms, trace_id, trace_content, created_at, updated_at)"
            " SELECT gen_random_uuid(), agent_id, deployment_id, version_id, domain_version_id, project, provider,"
            " model, (ARRAY['succeeded','succeeded','succeeded','failed','cancelled'])[1 + g %% 5], '', '',"
            " 'input ' || g, created_by, 3, 10, 10, 0, 0, 0, 0, '', false,"
            " now() - (g || ' minutes')::interval, now()"
            " FROM runs_run, generate_series(1, %s) g WHERE id = %s",
            [ROWS, seed.pk],
        )
        cursor.execute("ANALYZE runs_run")
    return acme


@pytest.mark.parametrize(
    ("url", "page"),
    [("/api/v1/runs", 1), ("/api/v1/runs", 2), ("/api/v1/runs?filter=status%3Dfailed", 1)],
    ids=["newest-first", "newest-first-page-2", "failed-newest-first"],
)
def test_runs_list_pages_come_off_an_index_not_a_sort_of_every_run(many_runs, url, page):
    """GET /api/v1/runs (default `created_at desc`): the plan was a Seq Scan of runs_run (or a
    bitmap scan of every failed run) feeding a Sort, because the statement said `ORDER BY
    created_at DESC NULLS LAST, id` and runs_run_created / runs_run_status_created are
    `created_at DESC` (NULLS FIRST); a later page's condition added `OR created_at IS NULL`."""
    sql = listing_statement(api(many_runs, issue(many_runs)), url, "runs_run", page=page)
    with schema_context(many_runs.schema_name):
        plan = plan_without_sort(sql)
    assert not FULL_SORT.search(plan), plan


APPEND = (
    "INSERT INTO audit_auditevent (tenant_id, seq, occurred_at, actor_type, actor_id, action, target_type,"
    " target_id, outcome, ip, user_agent, request_id, details, prev_hash, hash)"
    " SELECT %s, 1000000 + g, now() - (g || ' seconds')::interval, 'user', 'user:' || (g %% 7),"
    " 'test.a' || (g %% 20), 'run', g::text, 'success', '10.0.0.1', 'ua', '', '{}', repeat('0', 64), repeat('0', 64)"
    " FROM generate_series(1, %s) g"
)


@pytest.fixture
def many_events(acme, globex):
    for tenant in (acme, globex):  # the table is shared by every workspace's chain
        with rls_scope(tenant.pk), connection.cursor() as cursor:
            cursor.execute(APPEND, [tenant.pk, ROWS])
    return acme


@pytest.mark.parametrize(
    ("console", "url"),
    [
        (False, "/api/v1/audit/events"),
        (False, "/api/v1/audit/events?filter=action%3Dtest.a3"),
        (True, "/audit/"),
    ],
    ids=["api-newest-first", "api-by-action", "console-audit-page"],
)
def test_audit_event_pages_come_off_an_index_not_a_sort_of_the_whole_chain(many_events, console, url):
    """The audit trail's list (API and console page, default `seq desc`): `ORDER BY seq DESC
    NULLS LAST, id` could not be read off audit_event_chain_seq (tenant_id, seq) nor
    audit_event_action (tenant_id, action, seq), so every page fetched all of the chain's (or the
    action's) events and sorted them. Now the 51 newest are read backwards off the index."""
    acme = many_events
    client = client_for(acme, "owner@acme.test") if console else api(acme, issue(acme))
    sql = listing_statement(client, url, "audit_auditevent")
    with rls_scope(acme.pk):
        plan = plan_without_sort(sql)
    assert not FULL_SORT.search(plan), plan
