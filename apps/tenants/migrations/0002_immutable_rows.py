from django.db import migrations

# One function in the public schema, used by append-only tables in every tenant schema.
# Rows it guards can be inserted, never changed or removed (a schema drop still removes them).
FUNCTION = """
CREATE OR REPLACE FUNCTION public.foundry_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rows of %.% are append-only (% refused)', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [
        migrations.RunSQL(FUNCTION, "DROP FUNCTION IF EXISTS public.foundry_refuse_change();"),
    ]
