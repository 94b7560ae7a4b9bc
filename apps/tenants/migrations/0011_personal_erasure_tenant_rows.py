from django.db import migrations

# A data-subject erasure's 'personal' mode (0008) lets UPDATE through where append-only rows of a
# workspace hold a name or email (its catalog versions' authors, in its own schema). The shared
# append-only tables hold no personal data (the audit trail holds pseudonymous ids, the usage
# ledger none), and the app role sets `foundry.erasing` itself: the mode passes no UPDATE in the
# public schema, so SQL run as the app role cannot rewrite the ledger's counts and costs with it.
FUNCTION = """
CREATE OR REPLACE FUNCTION public.foundry_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    erasing text := pg_catalog.current_setting('foundry.erasing', true);
BEGIN
    IF TG_OP = 'DELETE' AND erasing = 'on' THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND erasing = 'personal' AND TG_TABLE_SCHEMA <> 'public' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'rows of %.% are append-only (% refused)', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0010_database_defaults")]

    operations = [migrations.RunSQL(FUNCTION, migrations.RunSQL.noop)]
