"""A manifest's test script that `forge validate` and `forge test` accept (the schema takes up to
1,000 steps) is one the server takes too: passed to run_start, as a test harness or the API would."""

from django_tenants.utils import schema_context

from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.forge.conftest import EXAMPLES, forge
from tests.runs.conftest import advance, agent_yaml, deploy

FINANCE = (EXAMPLES / "domains/finance.yaml").read_text()


def _forge_test(tmp_path, agent: str, domain: str = FINANCE) -> dict:
    """`forge test --json` on `agent` with `domain` laid out as in examples/: its JSON report."""
    (tmp_path / "domains").mkdir()
    (tmp_path / "agents").mkdir()
    (tmp_path / "domains/finance.yaml").write_text(domain)
    (tmp_path / "agents/agent.yaml").write_text(agent)
    ran = forge("--json", "test", "agents/agent.yaml", cwd=tmp_path)
    return ran.json


def test_a_manifest_test_script_forge_accepts_can_be_passed_to_run_start(acme, tmp_path):
    steps = [{"respond": "ok"}] + [{"respond": f"unused {n}"} for n in range(520)]
    lines = ["  tests:", "    - name: long-script", "      input: Long.", "      script:"]
    lines += [f"        - respond: {step['respond']}" for step in steps]
    lines += ["      expect: {output_contains: [ok]}", ""]
    agent = agent_yaml("clerk", limits="\n".join(lines))
    report = _forge_test(tmp_path, agent)
    assert report["passed"], report
    document = deploy(acme, FINANCE, agent)
    with schema_context("acme"):
        owner = tenant_user(acme, "owner@acme.test")
        run = run_start(actor=owner, agent=document, input="Long.", script=steps)
    assert advance(run, "acme").output == "ok"
