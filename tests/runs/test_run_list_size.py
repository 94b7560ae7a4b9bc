"""A page of the runs list stays bounded in memory whatever its runs' outputs hold.

A scripted run's answer is the script's `respond` text, which nothing bounds but the 4 MiB request
body, and `page_size` goes up to 1,000 (docs/api/filtering.md): with each run's whole `input` and
`output` in each item, one GET built a response of 1,000 x 4 MB (30 such runs: ~500 MiB at its
peak). A list item carries their first characters (`input_truncated`, `output_truncated`); the
run's own GET has them whole.
"""

import tracemalloc

from django_tenants.utils import schema_context

from apps.runs.models import Run
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy
from tests.runs.test_api import client, post

ANSWER = "x" * (4 * 1024 * 1024 - 4096)


def test_the_runs_list_at_its_largest_page_is_bounded_in_memory(acme):
    deploy(acme, FINANCE, agent_yaml("talker", limits="  limits: {max_steps: 5, max_tokens: 10000000}\n"))
    member = client(acme)
    response = post(member, "/api/v1/runs", {"agent": "talker", "input": "hi", "script": [{"respond": ANSWER}]})
    assert response.status_code == 201, response.content[:300]
    run = advance(Run(pk=response.json()["id"]), "acme")
    assert run.status == Run.Status.SUCCEEDED and len(run.output) == len(ANSWER), run.message
    with schema_context("acme"):  # 29 more such runs (as the one above), without 29 workers' time
        source = Run.objects.get(pk=run.pk)
        Run.objects.bulk_create(
            [
                Run(**{f.attname: getattr(source, f.attname) for f in Run._meta.fields if f.attname != "id"})
                for _ in range(29)
            ]
        )
    tracemalloc.start()
    try:
        listed = member.get("/api/v1/runs", {"page_size": 1000})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert listed.status_code == 200
    size = len(listed.content)
    assert peak < 100 * 1024 * 1024, f"one list request peaked at {peak >> 20} MiB for a {size >> 20} MiB page"
    first = listed.json()["runs"][0]
    assert (len(first["output"]), first["output_truncated"], first["input"], first["input_truncated"]) == (
        1000,
        True,
        "hi",
        False,
    )
    whole = member.get(f"/api/v1/runs/{first['id']}").json()
    assert len(whole["output"]) == len(ANSWER)
