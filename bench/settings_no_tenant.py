"""The baseline for bench/tenant_routing.py: bench/settings_tenant.py without the tenant middleware.

Nothing selects a tenant, so the connection stays on the public schema and the bench endpoint
counts the public schema's users table (it exists there too: apps.accounts is a shared app).
"""

from bench.settings_tenant import *  # noqa: F403
from bench.settings_tenant import MIDDLEWARE

MIDDLEWARE = [m for m in MIDDLEWARE if m != "apps.tenants.middleware.TenantRoutingMiddleware"]
