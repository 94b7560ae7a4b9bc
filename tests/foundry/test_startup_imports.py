"""A web process does not load the agent graph (LangGraph with LangChain's tracers and LangSmith:
about a second of CPU) until a run needs it: every gunicorn worker and `manage.py` command
starts that much sooner. The Celery worker loads it with the run task, where it is used."""

import subprocess
import sys

from tests.conftest import ROOT, server_env

_PROBE = """
import sys
import django
django.setup()
from django.conf import settings
from django.urls import get_resolver
get_resolver(settings.ROOT_URLCONF).url_patterns  # every view module, as the first request loads them
import foundry.wsgi
print(sorted(name for name in ("foundry.runtime.graph", "langgraph.graph") if name in sys.modules))
"""


def test_a_web_process_with_every_view_loaded_has_not_loaded_the_agent_graph():
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env=server_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout
