"""/metrics sums the counters of every web and worker process when FOUNDRY_METRICS_DIR is set,
which is all a process is given (docker-compose.yml, bin/dev): settings.py derives
PROMETHEUS_MULTIPROC_DIR from it before prometheus_client chooses where values live."""

import os
import subprocess
import sys

from django.test import Client

from tests.conftest import ROOT

TOKEN = "metrics-token-for-review-0123456789"

# What a Celery worker (or a gunicorn worker) does: Django set up from its settings, with only
# FOUNDRY_METRICS_DIR configured (as docker-compose.yml and bin/dev configure it), then a model
# call counted. No PROMETHEUS_MULTIPROC_DIR in the environment: settings.py derives it.
_WORKER = (
    "import django; django.setup();"
    "from types import SimpleNamespace as N; from foundry.metrics import usage_counted;"
    "usage_counted(record=N(provider='p', model='m', input_tokens=7, output_tokens=3, cached_tokens=0,"
    " cache_write_tokens=0, cost_usd=None), schema='acme')"
)


def test_a_worker_configured_by_foundry_metrics_dir_writes_counters_the_scrape_sums(tmp_path, settings):
    """A worker counts a model call's tokens in its own process; the web process's scrape shows them."""
    settings.FOUNDRY_METRICS_TOKEN = TOKEN
    settings.FOUNDRY_METRICS_DIR = str(tmp_path)
    env = {k: v for k, v in os.environ.items() if k.upper() != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(FOUNDRY_METRICS_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="foundry.settings")
    subprocess.run([sys.executable, "-c", _WORKER], env=env, cwd=ROOT, check=True, timeout=120)
    text = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").get("/metrics").content.decode()
    assert 'foundry_model_tokens_total{kind="input",model="unpriced",provider="p",tenant="acme"} 7.0' in text
