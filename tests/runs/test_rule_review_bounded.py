"""A tool call's DIS rule review is bounded in time, whatever the domain and the arguments.

A member controls both the domain's rules (1 MiB: hundreds of rules of 200 wildcard comparisons
each on a list field) and a scripted run's tool-call arguments (a list of up to ~1M strings in a
4 MiB body). Checking every value against every wildcard took ~40 ms per value there: one call
held a worker shared by every workspace for hours, while the run's limit was seconds. Past
MAX_WILDCARD_CHECKS (values times wildcards) the argument is refused (`tool_argument_invalid`).
"""

import time

from django_tenants.utils import schema_context

from apps.runs.models import Run, Step
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.runs.conftest import advance, deploy

RULES, TERMS = 50, 200  # 10,000 wildcards on `tags`


def _domain() -> str:
    rules = "".join(
        f"    - name: r{r}\n      entity: invoice\n      then: warn\n      when: '"
        + " OR ".join(f'tags:"t{r}x{i}*"' for i in range(TERMS))
        + "'\n"
        for r in range(RULES)
    )
    return (
        "apiVersion: foundry/v1\nkind: Domain\nmetadata: {name: big}\nspec:\n  entities:\n    invoice:\n"
        "      fields:\n        id: {type: string}\n        tags: {type: list, items: {type: string}}\n"
        "  rules:\n" + rules
    )


AGENT = """apiVersion: foundry/v1
kind: Agent
metadata: {name: tagger, project: tests}
spec:
  domain: {name: big, version: 1}
  model: {provider: scripted, name: scripted-1}
  instructions: Tag invoices.
  tools:
    - {name: find_invoices, type: dis_query, entity: invoice, description: Invoices.}
  limits: {max_steps: 5, max_tokens: 10000000, timeout_seconds: 2}
"""


def test_rule_review_of_a_long_list_argument_is_bounded_by_the_run_time_limit(acme):
    agent = deploy(acme, _domain(), AGENT)
    script = [
        {"tool_call": {"tool": "find_invoices", "arguments": {"tags": [f"v{i}" for i in range(600)]}}},
        {"respond": "done"},
    ]
    with schema_context("acme"):
        owner = tenant_user(acme, "owner@acme.test")
        run = run_start(actor=owner, agent=agent, input="Tag.", script=script)
    started = time.monotonic()
    run = advance(run, "acme")
    took = time.monotonic() - started
    # A 600-item list is 5 KB of the 4 MiB a request may carry: 6,000,000 checks, refused at once.
    assert took < 10, f"one tool call's rule review held the worker {took:.0f} s (run limit 2 s)"
    assert run.status in (Run.Status.FAILED, Run.Status.SUCCEEDED)
    with schema_context("acme"):
        step = Step.objects.get(run=run, node="tool")
    assert (step.status, step.error) == ("error", "tool_argument_invalid"), (step.status, step.error, step.summary)


LONG_RULES, LONG_TERMS = 150, 150  # 22,500 wildcards on `name`, each `*...*`


def _long_text_domain() -> str:
    rules = "".join(
        f"    - name: r{r}\n      entity: invoice\n      then: warn\n      when: '"
        + " OR ".join(f'name="*{r}x{i}*"' for i in range(LONG_TERMS))
        + "'\n"
        for r in range(LONG_RULES)
    )
    return (
        "apiVersion: foundry/v1\nkind: Domain\nmetadata: {name: big}\nspec:\n  entities:\n    invoice:\n"
        "      fields:\n        id: {type: string}\n        name: {type: string}\n"
        "  rules:\n" + rules
    )


LONG_TEXT_AGENT = """apiVersion: foundry/v1
kind: Agent
metadata: {name: namer, project: tests}
spec:
  domain: {name: big, version: 1}
  model: {provider: scripted, name: scripted-1}
  instructions: Find invoices.
  tools:
    - {name: find_invoices, type: dis_query, entity: invoice, description: Invoices.}
  limits: {max_steps: 5, max_tokens: 10000000, timeout_seconds: 2}
"""


def test_rule_review_of_one_long_text_against_many_wildcards_is_bounded(acme):
    """One value counts by its length too: a 1 MiB text against 22,500 `*...*` wildcards is
    22,500 scans of 1 MiB (23 s of a shared worker; 50,000 wildcards and 4 MiB, both allowed,
    minutes), refused at once (MAX_WILDCARD_SCAN)."""
    agent = deploy(acme, _long_text_domain(), LONG_TEXT_AGENT)
    script = [
        {"tool_call": {"tool": "find_invoices", "arguments": {"name": "a" * (1 << 20)}}},
        {"respond": "done"},
    ]
    with schema_context("acme"):
        owner = tenant_user(acme, "owner@acme.test")
        run = run_start(actor=owner, agent=agent, input="Find.", script=script)
    started = time.monotonic()
    run = advance(run, "acme")
    took = time.monotonic() - started
    assert run.status in (Run.Status.FAILED, Run.Status.SUCCEEDED)
    assert took < 3, f"one tool call's rule review held the worker {took:.1f} s (run limit 2 s)"
    with schema_context("acme"):
        step = Step.objects.get(run=run, node="tool")
    assert (step.status, step.error) == ("error", "tool_argument_invalid")
