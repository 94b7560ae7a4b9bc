"""Production settings plus the bench endpoint (bench/routing_app.py); tenant routing on.

Used only by bench/tenant_routing.py and bench/web_servers.py. DEBUG is forced off whatever
FOUNDRY_DEBUG says: with DEBUG on, Django records every query and the figures mean nothing.
"""

from foundry.settings import *  # noqa: F403

DEBUG = False
ROOT_URLCONF = "bench.routing_app"
