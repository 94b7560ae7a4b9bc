from django.db import migrations

# Audit events moved from each tenant's schema to the chained trail in the public schema
# (apps/audit, migration 0002). apps.runs is a tenant-only app, so this runs in tenant schemas
# (and the base schema new tenants are cloned from) and never in the public one.


class Migration(migrations.Migration):
    dependencies = [("runs", "0003_checkpoint_tables")]

    # Qualified with the schema being migrated: unqualified, the name would fall through the
    # search path to the public schema's new audit table.
    operations = [
        migrations.RunSQL(
            "DO $$ BEGIN EXECUTE format('DROP TABLE IF EXISTS %I.audit_auditevent', current_schema()); END $$;",
            migrations.RunSQL.noop,
        )
    ]
