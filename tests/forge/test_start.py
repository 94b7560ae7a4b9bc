"""`forge` starts quickly: validating documents offline loads neither Django's ORM (the filter
compiler builds a Q only when a query asks for it) nor httpx (for commands that go online, or a
document's http tool)."""

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

_PROBE = """
import json, sys
from foundry.forge.cli import main
code = main(["validate", "domains/finance.yaml", "agents/triage.yaml"])
print(json.dumps([code, sorted(m for m in ("django.db.models", "httpx", "langgraph") if m in sys.modules)]))
"""


def test_validating_documents_with_rules_offline_loads_neither_the_orm_nor_httpx(workspace):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOUNDRY_", "DJANGO_"))}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=workspace,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    code, loaded = json.loads(done.stdout.splitlines()[-1])
    assert (code, loaded) == (0, []), done.stdout
