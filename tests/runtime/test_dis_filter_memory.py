"""A run's dis_query filters (text the model chooses) do not stay in the process after the run.

The rule book of a DIS is kept per process and shared by every run and workspace of the same
content (foundry/runtime/rules.py `rule_book`, bounded by MAX_BOOKS and MAX_BOOKS_SOURCE, which
count only the DIS's own source). `_dis_query` checked each filter with the book's per-entity
FilterSpec, whose cache kept it (64 per entity, ~150 KiB for 4 KB of text): up to 500 entities x
64 filters per book, 32 books per process, none of it counted by the book cache's bounds — a
worker's memory for anyone who can deploy an agent or steer a model. Found by the caches review;
`compile_uncached` now (foundry/filtering/compiler.py).
"""

import gc
import tracemalloc

from django_tenants.utils import schema_context

from apps.runs.models import Run
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy

CALLS = 60
LIMITS = "  limits:\n    max_steps: 200\n    max_tokens: 10000000\n    timeout_seconds: 600\n"


def _filter(run: int, call: int) -> str:
    """A valid filter of ~4 KB on the invoice entity, distinct per (run, call)."""
    terms, text = [], ""
    for j in range(200):
        term = f'id = "r{run}c{call}t{j}"'
        if len(text) + len(term) + 4 > 4000:
            break
        terms.append(term)
        text = " OR ".join(terms)
    return text


def _run(tenant, agent, filters: list[str]) -> Run:
    script = [{"tool_call": {"tool": "find_invoices", "arguments": {"filter": f}}} for f in filters]
    script.append({"respond": "done"})
    with schema_context(tenant.schema_name):
        owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
        run = run_start(actor=owner, agent=agent, input="Look invoices up.", script=script)
    return advance(run, tenant.schema_name)


def _retained(tenant, agent, filters: list[str]) -> int:
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    run = _run(tenant, agent, filters)
    assert run.status == "succeeded", (run.status, run.error_code if hasattr(run, "error_code") else None)
    del run
    gc.collect()
    return tracemalloc.get_traced_memory()[0] - before


def test_a_runs_dis_query_filters_are_not_kept_by_the_process(acme):
    agent = deploy(acme, FINANCE, agent_yaml(limits=LIMITS))
    same = _filter(0, 0)
    _run(acme, agent, [same] * CALLS)  # warm-up: whatever a first run sets up once per process
    tracemalloc.start()
    try:
        control = _retained(acme, agent, [same] * CALLS)  # the same calls, one filter text
        distinct = _retained(acme, agent, [_filter(1, i) for i in range(CALLS)])  # 60 filter texts
    finally:
        tracemalloc.stop()
    grown = distinct - control
    # Each distinct 4 KB filter keeps ~150 KiB of compiled Q objects and closures in the shared book.
    assert grown < 2 * 1024 * 1024, f"the process kept {grown / 1024 / 1024:.1f} MiB more after a run's {CALLS} filters"
