"""A tool call's DIS rule review is bounded in time, whatever the domain and the arguments.

A member controls both the domain's rules (1 MiB: hundreds of rules of 200 wildcard comparisons
each on a field) and a scripted run's tool-call arguments (a list of up to ~1M strings, or one
text of megabytes, in a 4 MiB body). Checking every value against every wildcard took ~40 ms per
value there: one call held a worker shared by every workspace for hours, while the run's limit
was seconds. Past MAX_WILDCARD_CHECKS (values times wildcards) or MAX_WILDCARD_SCAN (characters
times wildcards) the argument is refused (`tool_argument_invalid`).
"""

import time

from django_tenants.utils import schema_context

from apps.runs.models import Run, Step
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.runs.conftest import advance, deploy

AGENT = """apiVersion: foundry/v1
kind: Agent
metadata: {name: finder, project: tests}
spec:
  domain: {name: big, version: 1}
  model: {provider: scripted, name: scripted-1}
  instructions: Find invoices.
  tools:
    - {name: find_invoices, type: dis_query, entity: invoice, description: Invoices.}
  limits: {max_steps: 5, max_tokens: 10000000, timeout_seconds: 2}
"""


def _domain(field: str, kind: str, rules: int, terms: int, wildcard: str) -> str:
    """Domain `big`: `rules` rules of `terms` wildcards each on invoice field `field`
    (`wildcard`: the comparison, formatted with the rule's number `r` and the term's `i`)."""
    when = "".join(
        f"    - name: r{r}\n      entity: invoice\n      then: warn\n      when: '"
        + " OR ".join(wildcard.format(r=r, i=i) for i in range(terms))
        + "'\n"
        for r in range(rules)
    )
    return (
        "apiVersion: foundry/v1\nkind: Domain\nmetadata: {name: big}\nspec:\n  entities:\n    invoice:\n"
        f"      fields:\n        id: {{type: string}}\n        {field}: {kind}\n"
        "  rules:\n" + when
    )


def _one_call(tenant, domain: str, arguments: dict) -> tuple[Run, Step, float]:
    """A run making one dis_query call with `arguments`: (the run, that call's step, seconds advanced)."""
    agent = deploy(tenant, domain, AGENT)
    script = [{"tool_call": {"tool": "find_invoices", "arguments": arguments}}, {"respond": "done"}]
    with schema_context(tenant.schema_name):
        run = run_start(actor=tenant_user(tenant, "owner@acme.test"), agent=agent, input="Find.", script=script)
    started = time.monotonic()
    run = advance(run, tenant.schema_name)
    took = time.monotonic() - started
    with schema_context(tenant.schema_name):
        return run, Step.objects.get(run=run, node="tool"), took


def test_rule_review_of_a_long_list_argument_is_bounded_by_the_run_time_limit(acme):
    # 10,000 wildcards on `tags`; a 600-item list is 5 KB of the 4 MiB a request may carry:
    # 6,000,000 checks, refused at once.
    domain = _domain("tags", "{type: list, items: {type: string}}", 50, 200, 'tags:"t{r}x{i}*"')
    run, step, took = _one_call(acme, domain, {"tags": [f"v{i}" for i in range(600)]})
    assert took < 10, f"one tool call's rule review held the worker {took:.0f} s (run limit 2 s)"
    assert run.status in (Run.Status.FAILED, Run.Status.SUCCEEDED)
    assert (step.status, step.error) == ("error", "tool_argument_invalid"), (step.status, step.error, step.summary)


def test_rule_review_of_one_long_text_against_many_wildcards_is_bounded(acme):
    """One value counts by its length too: a 1 MiB text against 22,500 `*...*` wildcards is
    22,500 scans of 1 MiB (23 s of a shared worker; 50,000 wildcards and 4 MiB, both allowed,
    minutes), refused at once (MAX_WILDCARD_SCAN)."""
    domain = _domain("name", "{type: string}", 150, 150, 'name="*{r}x{i}*"')
    run, step, took = _one_call(acme, domain, {"name": "a" * (1 << 20)})
    assert run.status in (Run.Status.FAILED, Run.Status.SUCCEEDED)
    # The whole run, the domain's 22,500 wildcards compiled and the 1 MiB argument recorded
    # included: 1.5-4 s on a slow shared machine, against 23 s and more when each was scanned.
    assert took < 8, f"one tool call's rule review held the worker {took:.1f} s (run limit 2 s)"
    assert (step.status, step.error) == ("error", "tool_argument_invalid")
