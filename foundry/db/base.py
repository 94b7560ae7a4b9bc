"""PostgreSQL backend: django-tenants' schema switching, minus redundant round trips.

django-tenants forgets the connection's search_path whenever a tenant is set, so every request
pays a `SET search_path` even when the connection already points at that tenant. This wrapper
keeps what the server was last told and skips the statement when nothing would change. The
parent class already forgets it on close, rollback and savepoint rollback, where PostgreSQL
itself may have reverted the setting, so skipping is only done when the value is known.

Nor is the health check (CONN_HEALTH_CHECKS: a `SELECT 1` before a reused connection's first
query in each request) traced: it would add a span saying nothing to every request's trace. Its
time stays inside the request's span.
"""

from django_tenants.postgresql_backend import base as tenants_base
from opentelemetry.instrumentation.utils import suppress_instrumentation


class DatabaseWrapper(tenants_base.DatabaseWrapper):
    def set_tenant(self, tenant, include_public=True):
        applied = self.search_path_set_schemas
        super().set_tenant(tenant, include_public)
        if applied and self.connection is not None and applied == self._get_cursor_search_paths():
            self.search_path_set_schemas = applied

    def is_usable(self):
        with suppress_instrumentation():
            return super().is_usable()
