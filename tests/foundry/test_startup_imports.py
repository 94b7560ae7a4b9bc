"""A web process does not load the agent graph (LangGraph with LangChain's tracers and LangSmith:
about a second of CPU) until a run needs it: every gunicorn worker and `manage.py` command
starts that much sooner. The Celery worker loads it with the run task, where it is used, but
not the views and API modules no task uses."""

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


_WORKER_PROBE = """
import sys
from celery.fixups.django import DjangoWorkerFixup
from foundry.celery import app
app.loader.import_default_modules()  # the task modules, as `celery worker` loads them
DjangoWorkerFixup(app).validate_models()  # what Celery's Django fix-up does as the worker starts
print(sorted(name for name in ("apps.audit.views", "apps.runs.apis", "drf_spectacular.openapi") if name in sys.modules))
"""


def test_a_worker_starting_does_not_load_the_urlconfs_views():
    """Celery runs Django's system checks as a worker starts, and discards what they find; the
    URL check alone imported every view and API module (a second of CPU per worker start)."""
    env = server_env()
    env.pop("CELERY_SKIP_CHECKS", None)  # as a worker is started: foundry.celery decides
    result = subprocess.run(
        [sys.executable, "-c", _WORKER_PROBE], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout
