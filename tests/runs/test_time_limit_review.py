"""Run limits: what `limits.timeout_seconds` counts (docs/runs.md, "Limits and cancellation")."""

import time

from django_tenants.utils import schema_context

from apps.runs.services import run_start
from foundry.runtime.tools import Toolbox
from tests.conftest import tenant_user
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy


def test_time_spent_reviewing_a_tool_call_counts_toward_the_time_limit(acme, monkeypatch):
    """docs/runs.md: the `timeout` limit counts the time spent running, a call's review against
    the domain's rules included (docs/runs.md allows a review "a second or so" per call), checked
    before every step: four calls spending 0.4 s each in review, 1.6 s against a 1 s limit, end
    the run `timeout`. (A wait for an approval is not counted: tests/runs/test_engine.py.) The
    tool node used to start its clock after the review. The slow review stands in for a costly one."""
    review = Toolbox.review

    def slow_review(self, *args, **kwargs):
        time.sleep(0.4)
        return review(self, *args, **kwargs)

    monkeypatch.setattr(Toolbox, "review", slow_review)
    agent = deploy(acme, FINANCE, agent_yaml(limits="  limits: {timeout_seconds: 1}\n"))
    script = [{"tool_call": {"tool": "find_invoices", "arguments": {}}}] * 4 + [{"respond": "ok"}]
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        run = run_start(actor=owner, agent=agent, input="Look four times.", script=script)
    began = time.monotonic()
    run = advance(run, "acme")
    assert time.monotonic() - began > 1.0  # it ran past its limit, reviewing
    assert (run.status, run.reason) == ("failed", "timeout")


def test_a_tool_call_is_given_only_the_time_left_after_its_review(acme, monkeypatch):
    """docs/runs.md "Limits and cancellation": the time limit counts a call's review against the
    domain's rules, and "a tool or model call is given only the time the run has left": after a
    0.7 s review against a 1 s limit the tool is given what is left, not the whole second."""
    review, given = Toolbox.review, []

    def slow_review(self, *args, **kwargs):
        time.sleep(0.7)
        return review(self, *args, **kwargs)

    run_tool = Toolbox.run

    def recording_run(self, tool, arguments, *, timeout, key=None):
        given.append(timeout)
        return run_tool(self, tool, arguments, timeout=timeout, key=key)

    monkeypatch.setattr(Toolbox, "review", slow_review)
    monkeypatch.setattr(Toolbox, "run", recording_run)
    agent = deploy(acme, FINANCE, agent_yaml(limits="  limits: {timeout_seconds: 1}\n"))
    script = [{"tool_call": {"tool": "find_invoices", "arguments": {}}}, {"respond": "ok"}]
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        run = run_start(actor=owner, agent=agent, input="Look once.", script=script)
    advance(run, "acme")
    assert given, "the tool did not run"
    assert given[0] <= 0.35, f"the tool was given {given[0]:.2f} s after a 0.7 s review against a 1 s limit"
