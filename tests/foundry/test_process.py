"""A loaded web process keeps its modules out of the garbage collector's sight (foundry/process.py)."""

import subprocess
import sys

from tests.conftest import ROOT, server_env

PROBE = """
import gc
import foundry.wsgi
from django.urls import get_resolver
from django.conf import settings
urlconfs = (settings.ROOT_URLCONF, settings.PUBLIC_SCHEMA_URLCONF)
print(gc.get_freeze_count(), all(get_resolver(urlconf)._populated for urlconf in urlconfs))
"""


def test_the_wsgi_application_loads_its_urlconfs_and_freezes_what_it_loaded(django_db_setup):
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=server_env(), cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    frozen, urlconfs_loaded = int(out[-2]), out[-1]
    assert frozen > 100_000  # the modules' objects (Django, DRF, the apps, their views)
    assert urlconfs_loaded == "True"
