"""PostgreSQL backend: django-tenants' schema switching, minus redundant round trips.

django-tenants forgets the connection's search_path whenever a tenant is set, so every request
pays a `SET search_path` even when the connection already points at that tenant. This wrapper
keeps what the server was last told and skips the statement when nothing would change. The
parent class already forgets it on close, rollback and savepoint rollback, where PostgreSQL
itself may have reverted the setting, so skipping is only done when the value is known.

Statements the server prepared (settings: server-side binding, psycopg's prepare_threshold) keep
the result type they were prepared with: once a migration run elsewhere changes it (a column
added to a table read with `*`, a column's type changed), the server refuses them ("cached plan
must not change result type"). psycopg forgets its prepared statements on a rollback, so one in
a transaction heals when that transaction is rolled back; one in autocommit would fail on every
call of that connection. `PreparedCursor` deallocates them and runs the statement once more.

Nor is the health check (CONN_HEALTH_CHECKS: a `SELECT 1` before a reused connection's first
query in each request) traced: it would add a span saying nothing to every request's trace. Its
time stays inside the request's span.
"""

from django.db.backends.postgresql.base import ServerBindingCursor
from django_tenants.postgresql_backend import base as tenants_base
from opentelemetry.instrumentation.utils import suppress_instrumentation
from psycopg import errors, pq

STALE_PLAN = "cached plan must not change result type"


class PreparedCursor(ServerBindingCursor):
    def execute(self, query, params=None, **kwargs):
        try:
            return super().execute(query, params, **kwargs)
        except errors.FeatureNotSupported as exc:
            if STALE_PLAN not in str(exc) or self.connection.info.transaction_status != pq.TransactionStatus.IDLE:
                raise
            super().execute("DEALLOCATE ALL")  # psycopg forgets its own names with it
            return super().execute(query, params, **kwargs)


class DatabaseWrapper(tenants_base.DatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        if params.get("cursor_factory") is ServerBindingCursor:
            params["cursor_factory"] = PreparedCursor
        return params

    def set_tenant(self, tenant, include_public=True):
        applied = self.search_path_set_schemas
        super().set_tenant(tenant, include_public)
        if applied and self.connection is not None and applied == self._get_cursor_search_paths():
            self.search_path_set_schemas = applied

    def is_usable(self):
        with suppress_instrumentation():
            return super().is_usable()
