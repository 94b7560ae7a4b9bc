import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "foundry.settings")

from foundry.telemetry import telemetry_setup

# Before the application loads its middleware (Django's instrumentation adds one); in each
# gunicorn worker, which loads the application after the fork.
telemetry_setup("web")
application = get_wsgi_application()
# Everything loaded so far lives as long as the process: out of the collector's sight, so a full
# collection scans only what requests allocate (not ~half a million objects of modules, at
# ~100 ms a time).
gc.freeze()
