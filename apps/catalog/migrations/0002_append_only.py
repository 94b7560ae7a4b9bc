from django.db import migrations

TABLES = ("catalog_version", "catalog_deployment")


def _sql(table: str) -> str:
    return f"""
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION public.foundry_refuse_change();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION public.foundry_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial"), ("tenants", "0002_immutable_rows")]

    operations = [
        migrations.RunSQL(
            "".join(_sql(t) for t in TABLES),
            "".join(f"DROP TRIGGER {t}_append_only ON {t}; DROP TRIGGER {t}_no_truncate ON {t};" for t in TABLES),
        )
    ]
