"""The app role's reach into the owner's SECURITY DEFINER functions (apps/audit/migrations/0008,
0009, 0019): connecting directly as the application's role, as SQL injected into the application would."""

import psycopg

from foundry.db.roles import app_role
from tests.conftest import test_database_url

TENANT_ROW = (
    "INSERT INTO public.tenants_tenant (id, schema_name, slug, name, plan, status, created_at, member_count,"
    " http_allowed_networks, trace_content, deletion_requested_by, status_before_deletion)"
    " VALUES (0, 'zz_not_a_workspace', 'zz-not-a-workspace', 'x', 'team', 'deleting', now(), 0, '{}', false,"
    " '', 'active')"
)
SCHEDULING = (
    "SELECT public.audit_append(0, 'operator', 'operator:1', 'tenant.deletion_scheduled', 'tenants.tenant', '0',"
    " 'success', '', '', '', '{\"purge_after\":\"2000-01-01T00:00:00+00:00\"}', NULL, NULL)"
)


def platform_events(conn) -> int:
    conn.execute("SELECT set_config('foundry.tenant_id', '0', true)")
    return conn.execute("SELECT count(*) FROM public.audit_auditevent WHERE tenant_id = 0").fetchone()[0]


def test_the_app_role_cannot_purge_the_platform_chain(db):
    """docs/audit.md: "The platform's chain (0) is never pruned" and `audit_chain_purge` "takes a
    whole chain only of a workspace scheduled for deletion". Chain 0 is no workspace, but the
    function's gate asked only for a `tenants_tenant` row with that id in status `deleting` (a table the
    app role may INSERT into) and a scheduling on the platform chain (to which it may append). So SQL
    run as the app role inserted a tenant row with id 0, appended a scheduling whose grace was long
    over, and deleted the whole platform chain — the forged scheduling included, and its head and base, so
    the next append started a fresh chain at #1 that verified as intact. The purge refuses chain 0
    (as `audit_chain_prune` does), whatever the tenants table says. Everything here is rolled back."""
    with psycopg.connect(test_database_url()) as conn:  # one transaction, rolled back on the way out
        assert conn.execute("SELECT current_user").fetchone()[0] == app_role()
        before = platform_events(conn)
        assert before > 0  # provisioning acme and globex recorded events on the platform chain
        conn.execute(TENANT_ROW)
        conn.execute(SCHEDULING)
        try:
            with conn.transaction():
                deleted = conn.execute("SELECT table_name, deleted FROM public.audit_chain_purge(0)").fetchall()
        except psycopg.errors.InsufficientPrivilege:
            deleted = None
        left = platform_events(conn)
        conn.rollback()
    assert deleted is None and left == before + 1, (
        f"the app role purged the platform's audit chain: {deleted}; {left} of {before + 1} events left"
    )
