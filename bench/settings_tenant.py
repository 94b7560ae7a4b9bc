"""Production settings plus the bench endpoint (tenant routing on)."""

from foundry.settings import *  # noqa: F403

ROOT_URLCONF = "bench.routing_app"
