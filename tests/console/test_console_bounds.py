"""Console pages that could load more than they show: the agent and domain lists read no version's
body (a key of its content, at most, in the database) and show a page at a time; a run's page
shows its latest steps, not all of them."""

import re
import time
import uuid

import pytest
from django_tenants.utils import schema_context

from apps.catalog.models import Deployment, Document, Version
from apps.runs.models import Run, Step
from tests.conftest import client_for
from tests.console.test_data_growth import CONSOLE_PAGE_BOUND, HEAVY, big_domain
from tests.data_growth import queries_of, runs_add, sql_of
from tests.runs.conftest import FINANCE, TRIAGE, deploy

pytestmark = pytest.mark.django_db


def agents_add(tenant, agent: Document, n: int) -> None:
    """`n` more deployed agents, each a copy of `agent`'s live version (same pinned DIS), rows only."""
    with schema_context(tenant.schema_name):
        live = Deployment.objects.select_related("version").get(pk=agent.live_id)
        for i in range(n):
            document = Document.objects.create(kind="agent", name=f"copy-{uuid.uuid4().hex[:10]}", latest_number=1)
            version = Version.objects.create(
                document=document,
                number=1,
                digest=f"{i:064x}",
                source=live.version.source,
                content=live.version.content,
                message="copy",
                author_name="Owner",
                author_email="owner@acme.test",
                domain_version_id=live.domain_version_id,
            )
            deployment = Deployment.objects.create(
                agent=document, version=version, domain_version_id=live.domain_version_id, deployed_by="owner"
            )
            Document.objects.filter(pk=document.pk).update(live=deployment)


# A version's body selected whole (a key read from it in the database, `#>>`, is not).
WHOLE = re.compile(HEAVY.pattern + r"(?!\s*#>>)")


def _heavy(sqls: list[str]) -> list[str]:
    return [s for s in sqls if WHOLE.search(s)]


@pytest.mark.parametrize("url", ["/agents/", "/domains/"])
def test_document_list_does_not_load_each_versions_yaml_and_content(acme, url):
    """The console's agent and domain lists show numbers and names: no document's live version,
    pinned DIS version or latest version is read whole (YAML and parsed content, each up to
    1 MiB; 40 agents on a ~730 KB DIS moved ~60 MB out of PostgreSQL per view)."""
    agent = deploy(acme, big_domain(), TRIAGE)
    agents_add(acme, agent, 40)
    sqls, response = sql_of(client_for(acme, "owner@acme.test"), url)
    assert response.status_code == 200
    heavy = _heavy(sqls)
    assert not heavy, heavy[0][:1500]


def test_agent_list_bounds_the_agents_it_lists(acme):
    """The agent list is shown a page at a time, as every other growing console list."""
    agent = deploy(acme, FINANCE, TRIAGE)
    agents_add(acme, agent, 150)
    response = client_for(acme, "owner@acme.test").get("/agents/")
    assert response.status_code == 200
    rows = len(re.findall(r'<tr data-name="', response.content.decode()))
    assert rows <= CONSOLE_PAGE_BOUND, rows


def _steps(tenant, run: Run, n: int, argument_chars: int) -> None:
    with schema_context(tenant.schema_name):
        Step.objects.bulk_create(
            Step(
                run=run,
                index=i + 1,
                node="tool",
                tool="find_invoices",
                arguments={"q": "x" * argument_chars},
                status="ok",
                summary=f"step {i}",
                record={"warnings": []},
                replay={},
            )
            for i in range(n)
        )
        Run.objects.filter(pk=run.pk).update(step_count=n, status=Run.Status.RUNNING)


@pytest.mark.parametrize("path", ["", "live/?v=stale"])
def test_run_page_bounds_the_steps_it_shows(acme, path):
    """A run's page (and its live fragment, re-sent whole each second a running run changes)
    shows its latest 200 steps, not every one of up to 1,000 (each step's arguments as long as
    the model wrote them), and says how many are not shown."""
    agent = deploy(acme, FINANCE, TRIAGE)
    run = runs_add(acme, agent, 1)[0]
    _steps(acme, run, 1000, 2000)
    started = time.perf_counter()
    queries, response = queries_of(client_for(acme, "owner@acme.test"), f"/runs/{run.pk}/{path}")
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    shown = len(re.findall(r'<li class="step ', response.content.decode()))
    assert shown <= 200, f"{shown} steps, {len(response.content):,} bytes, {queries} queries, {elapsed:.2f} s"
    assert 'data-index="1000"' in response.content.decode()
    assert "The 800 earlier steps are not shown" in response.content.decode()
