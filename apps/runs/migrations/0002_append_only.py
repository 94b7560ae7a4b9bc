from django.db import migrations

# Steps are written once (a recovered run replays them, never rewrites them): UPDATE refused.
# Deleting them with their run stays possible, for retention. The usage ledger refuses all change.
SQL = """
CREATE TRIGGER runs_step_write_once BEFORE UPDATE ON runs_step
    FOR EACH ROW EXECUTE FUNCTION public.foundry_refuse_change();
CREATE TRIGGER runs_usagerecord_append_only BEFORE UPDATE OR DELETE ON runs_usagerecord
    FOR EACH ROW EXECUTE FUNCTION public.foundry_refuse_change();
CREATE TRIGGER runs_usagerecord_no_truncate BEFORE TRUNCATE ON runs_usagerecord
    FOR EACH STATEMENT EXECUTE FUNCTION public.foundry_refuse_change();
"""

REVERSE = """
DROP TRIGGER runs_step_write_once ON runs_step;
DROP TRIGGER runs_usagerecord_append_only ON runs_usagerecord;
DROP TRIGGER runs_usagerecord_no_truncate ON runs_usagerecord;
"""


class Migration(migrations.Migration):
    dependencies = [("runs", "0001_initial"), ("tenants", "0002_immutable_rows")]

    operations = [migrations.RunSQL(SQL, REVERSE)]
