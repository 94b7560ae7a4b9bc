"""The console's run list pages by key, as the API does: no count of every run and no offset read
past (with 500,000 runs a deep page took 1.5 s, and `?page=99999` let any viewer ask for it).
Older pages follow `?page_token=`, bound to the workspace and the filters it was made under."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.runs.models import Run
from tests.conftest import client_for
from tests.runs.test_api import make_run

LISTED = re.compile(r'data-run="([0-9a-f-]+)"')
OLDER = re.compile(r'href="\?([^"]*page_token=[^"]+)" data-testid="older"')


@pytest.fixture
def runs(acme, triage) -> list[str]:
    """120 runs of acme, one a minute, every third failed; newest first."""
    start = timezone.now() - timedelta(days=1)
    made = []
    for n in range(120):
        run = make_run(acme, triage, status=Run.Status.FAILED if n % 3 == 0 else Run.Status.SUCCEEDED)
        with schema_context("acme"):
            Run.objects.filter(pk=run.pk).update(created_at=start + timedelta(minutes=n))
        made.append(str(run.pk))
    return made[::-1]


def _pages(client, query: str = "") -> list[list[str]]:
    pages, url = [], f"/runs/?{query}"
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content[:300]
        html = response.content.decode()
        pages.append(LISTED.findall(html))
        older = OLDER.search(html)
        url = "/runs/?" + older.group(1).replace("&amp;", "&") if older else ""
    return pages


def test_older_pages_follow_keys_newest_first_and_list_every_run_once(acme, runs):
    pages = _pages(client_for(acme, "viewer@acme.test"))
    assert [len(page) for page in pages] == [50, 50, 20]
    assert [run for page in pages for run in page] == runs


def test_a_filter_stays_with_its_pages(acme, runs):
    with schema_context("acme"):
        failed = [
            str(pk) for pk in Run.objects.filter(status="failed").order_by("-created_at").values_list("pk", flat=True)
        ]
    pages = _pages(client_for(acme, "viewer@acme.test"), "status=failed")
    assert [len(page) for page in pages] == [40]
    assert pages[0] == failed


def test_a_page_reads_no_count_and_no_offset(acme, runs):
    client = client_for(acme, "viewer@acme.test")
    second = OLDER.search(client.get("/runs/").content.decode()).group(1).replace("&amp;", "&")
    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/runs/?{second}").status_code == 200
    statements = " ".join(q["sql"].upper() for q in queries.captured_queries if "RUNS_RUN" in q["sql"].upper())
    assert "COUNT(" not in statements and "OFFSET" not in statements


def test_a_token_of_other_filters_or_of_another_workspace_is_refused_and_lists_nothing(acme, globex, runs):
    client = client_for(acme, "viewer@acme.test")
    token = OLDER.search(client.get("/runs/?status=succeeded").content.decode()).group(1).replace("&amp;", "&")
    token = token.split("page_token=")[1]
    for url, who in (
        (f"/runs/?page_token={token}", client),  # made under status=succeeded
        (f"/runs/?status=failed&page_token={token}", client),
        ("/runs/?page_token=garbage", client),
        (f"/runs/?status=succeeded&page_token={token}", client_for(globex, "owner@globex.test")),  # globex's list
    ):
        response = who.get(url)
        html = response.content.decode()
        assert response.status_code == 400, url
        assert LISTED.findall(html) == [] and 'data-testid="page-error"' in html
        assert "Traceback" not in html
