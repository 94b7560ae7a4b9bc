import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "foundry.settings")

from foundry.process import loaded_freeze
from foundry.telemetry import telemetry_setup

# Before the application loads its middleware (Django's instrumentation adds one); in each
# gunicorn worker, which loads the application after the fork.
telemetry_setup("web")
application = get_wsgi_application()
loaded_freeze()
