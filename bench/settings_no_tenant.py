"""The same, without the tenant middleware: the baseline. The endpoint reads the public schema."""

from bench.settings_tenant import *  # noqa: F403
from bench.settings_tenant import MIDDLEWARE

MIDDLEWARE = [m for m in MIDDLEWARE if m != "apps.tenants.middleware.TenantRoutingMiddleware"]
