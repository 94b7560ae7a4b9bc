"""The functions that delete from the audit trail as its owner are never callable by PUBLIC, not
even for a moment: migrations of the public schema commit one by one, and a run that stops after
the one creating them (a later migration fails, the job is killed) would leave them so."""

from django.core.management import call_command
from django.db import connection

from foundry.db.roles import app_role_grant, as_owner, definer_functions_restrict

PURGE = "public.audit_chain_purge(bigint)"
PRUNE = "public.audit_chain_prune(bigint, timestamptz)"


def _public_may_execute() -> dict[str, bool]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT has_function_privilege('public', %s, 'EXECUTE'), has_function_privilege('public', %s, 'EXECUTE')",
            [PURGE, PRUNE],
        )
        purge, prune = cursor.fetchone()
    return {"audit_chain_purge": purge, "audit_chain_prune": prune}


def test_audit_0008_commits_its_definer_functions_not_executable_by_public(django_db_setup, django_db_blocker):
    """Once audit 0008 has committed, only the owner and the app role may call them."""
    with django_db_blocker.unblock():
        with as_owner():
            try:
                call_command("migrate_schemas", "audit", "0007", shared=True, interactive=False, verbosity=0)
                # 0008 applied and committed, as when the next shared migration then fails.
                call_command("migrate_schemas", "audit", "0008", shared=True, interactive=False, verbosity=0)
                after_0008 = _public_may_execute()
            finally:
                call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
                app_role_grant()
                definer_functions_restrict()
        connection.set_schema_to_public()
    assert after_0008 == {"audit_chain_purge": False, "audit_chain_prune": False}
