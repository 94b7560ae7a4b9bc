"""`audit_chain_prune` records every prune in the chain it cuts.

The app role may call the owner's function, and so may SQL injected into the application: it
cut a chain (up to a signed checkpoint, never the last day) and left no trace but the moved
base, whatever the workspace's retention policy or legal hold said. Now every prune that deletes
appends `audit.pruned` to the chain itself, in the same transaction: where the chain now starts
(`first_seq`), how many events went, the boundary asked for (`before`) and the database role
that called. `audit_verify` reports a chain whose start moved without such an event
(`prune_unrecorded`); a prune no retention pass made shows as an `audit.pruned` without the
pass's `retention.applied`, at a boundary the policy's history does not explain.

The function does not read the workspace's policy itself: that lives in the tenant's schema,
which the app role owns, and nothing run as the owner reads a tenant schema (foundry/db/roles.py:
a view or a policy put there would run the app role's code as the owner). The retention pass
applies the policy (apps/lifecycle/retention.py).

Chains pruned before this migration get that event now, marked `recorded_late`.
"""

from importlib import import_module

from django.db import migrations

_PREVIOUS = import_module("apps.audit.migrations.0010_prune_floor").SQL
_CUT = """                    updated_at = EXCLUDED.updated_at;
    END IF;
"""
# After the cut, in the same transaction: the prune, in the chain it cut (details as
# apps.audit.chain.details_text writes them), appended outside the erasing gate.
_RECORDED = """                    updated_at = EXCLUDED.updated_at;
        PERFORM set_config('foundry.erasing', coalesce(previous_erasing, ''), true);
        PERFORM public.audit_append(p_tenant, 'service', 'service:audit.prune', 'audit.pruned', 'audit.chain',
            p_tenant::text, 'success', '', '', '',
            format('{"before":%s,"deleted":%s,"first_seq":%s,"role":%s}',
                   to_json(to_char(p_before AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')), deleted,
                   anchor_seq + 1, to_json(session_user::text)),
            NULL, NULL);
    END IF;
"""
SQL = _PREVIOUS.replace(_CUT, _RECORDED, 1)
assert SQL != _PREVIOUS

# Chains pruned before: their prune recorded now (every workspace's, and the platform's, 0).
CATCH_UP = """
DO $$
DECLARE
    chain bigint;
    first bigint;
BEGIN
    FOR chain IN SELECT id FROM public.tenants_tenant UNION SELECT 0 LOOP
        PERFORM set_config('foundry.tenant_id', chain::text, true);
        SELECT first_seq INTO first FROM public.audit_auditchainbase WHERE tenant_id = chain;
        IF first > 1 AND NOT EXISTS (
            SELECT 1 FROM public.audit_auditevent
             WHERE tenant_id = chain AND action = 'audit.pruned' AND seq >= first
        ) THEN
            PERFORM public.audit_append(chain, 'service', 'service:audit.prune', 'audit.pruned', 'audit.chain',
                chain::text, 'success', '', '', '', format('{"first_seq":%s,"recorded_late":true}', first), NULL, NULL);
        END IF;
    END LOOP;
    PERFORM set_config('foundry.tenant_id', '', true);
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0010_prune_floor"), ("tenants", "0001_initial")]  # CATCH_UP reads tenants

    operations = [migrations.RunSQL(SQL, _PREVIOUS), migrations.RunSQL(CATCH_UP, migrations.RunSQL.noop)]
