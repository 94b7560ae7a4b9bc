from django.db import migrations

# Append-only rows may be deleted, never changed, inside a transaction that says it is erasing
# (apps/lifecycle/erasing.py: retention, tenant purge). The setting is transaction-local, so it
# ends with that transaction and a pooled connection never carries it further.
FUNCTION = """
CREATE OR REPLACE FUNCTION public.foundry_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND pg_catalog.current_setting('foundry.erasing', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'rows of %.% are append-only (% refused)', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""

REVERSE = """
CREATE OR REPLACE FUNCTION public.foundry_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rows of %.% are append-only (% refused)', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0005_trace_content")]

    operations = [migrations.RunSQL(FUNCTION, REVERSE)]
