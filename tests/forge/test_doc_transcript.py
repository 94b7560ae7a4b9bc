"""docs/forge.md's console transcript of `forge test examples/agents/invoice-triage.yaml` is what forge prints
(timings aside)."""

import re

from tests.conftest import ROOT
from tests.forge.conftest import forge

COMMAND = "$ forge test examples/agents/invoice-triage.yaml"


def _documented_output() -> list[str]:
    lines = (ROOT / "docs/forge.md").read_text().splitlines()
    start = lines.index(COMMAND) + 1
    out = []
    for line in lines[start:]:
        if line.startswith("$ ") or line.startswith("```"):
            break
        out.append(line)
    return out


def test_forge_test_transcript_in_docs_matches_the_example_manifest():
    """docs/forge.md ("Commands", console block) shows, for the example a newcomer runs next:

        $ forge test examples/agents/invoice-triage.yaml
        PASS small-invoice-is-approved (3 steps, 41 ms)
        1 passed, 0 failed (1 test, provider scripted).

    examples/agents/invoice-triage.yaml has two sandbox tests (small-invoice-is-approved and
    large-invoice-waits-for-approval, the one the demo's approval comes from), and forge prints a
    PASS line for each and "2 passed, 0 failed (2 tests, provider scripted)." Timings aside, the
    documented lines should be what the command prints."""
    ran = forge("test", "examples/agents/invoice-triage.yaml")
    assert ran.code == 0, ran.err

    def shape(lines):
        return [re.sub(r"\d+ ms\)", "N ms)", line) for line in lines if line.strip()]

    assert shape(_documented_output()) == shape(ran.lines)
