from django.db import migrations

# A data-subject erasure (apps/lifecycle/erasure.py) rewrites a member's name and email where
# append-only rows hold them (catalog versions' authors): inside a transaction whose
# `foundry.erasing` is 'personal', UPDATE passes — except on the audit trail, whose events hold
# pseudonymous ids only and are hashed; 'on' (retention, purge) lets DELETE pass. Both settings
# are transaction-local.
FUNCTION = """
CREATE OR REPLACE FUNCTION public.foundry_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    erasing text := pg_catalog.current_setting('foundry.erasing', true);
BEGIN
    IF TG_OP = 'DELETE' AND erasing = 'on' THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND erasing = 'personal'
       AND TG_TABLE_NAME NOT IN ('audit_auditevent', 'audit_auditcheckpoint') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'rows of %.% are append-only (% refused)', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0007_deletion_schedule")]

    operations = [migrations.RunSQL(FUNCTION, migrations.RunSQL.noop)]
