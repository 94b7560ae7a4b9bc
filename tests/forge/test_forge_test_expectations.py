"""`forge test` expectations hold only for what happened."""

from tests.forge.conftest import TRIAGE, forge

# The finance domain of tests/forge has the rule `large-invoice: amount > 10000 -> require_approval`.
# "lots" is no number: the runtime refuses the call before running it (tool_argument_invalid,
# from the DIS rules' review in AgentGraph._admit) — the tool never ran, no rule was evaluated and
# no approval could be asked for.
REFUSED_CALL = """\
    - name: looks-up-the-big-invoice
      input: Look up the big invoice.
      script:
        - tool_call: {tool: find_invoices, arguments: {amount: lots}}
        - respond: Looked it up.
      expect:
        tools_called: [find_invoices]
"""


def test_a_call_refused_before_it_ran_does_not_count_as_called(workspace):
    """`expect.tools_called` counts only calls that went ahead (foundry/runtime/sandbox.py): a call
    the runtime refused before running it (an argument the rules cannot review) is not "called",
    so a test expecting it fails."""
    (workspace / "agents/triage.yaml").write_text(TRIAGE + REFUSED_CALL)
    ran = forge("--json", "test", "--test", "looks-up-the-big-invoice", "agents/triage.yaml", cwd=workspace)
    outcome = ran.json["tests"][0]
    assert "find_invoices" not in outcome["tools_called"], outcome
    assert ran.code == 1, ran.out
