"""SIEM sinks (models.AuditSink): where each tenant's chain is pushed, and the delivery cursor.

The table is shared (public schema) and guarded like the events (migration 0002): forced
Row-Level Security shows a row only inside `rls_scope(tenant_id)` of its own tenant, so neither
the API, the console nor a delivery worker can read or change another tenant's sinks.
"""

from django.db import migrations, models

TABLE = "audit_auditsink"
CURRENT_TENANT = "NULLIF(current_setting('foundry.tenant_id', true), '')::bigint"

SQL = f"""
ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY;
CREATE POLICY {TABLE}_tenant ON {TABLE} USING (tenant_id = {CURRENT_TENANT}) WITH CHECK (tenant_id = {CURRENT_TENANT});
"""
REVERSE = f"DROP POLICY {TABLE}_tenant ON {TABLE};"


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_chained_trail")]

    operations = [
        migrations.CreateModel(
            name="AuditSink",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("tenant_id", models.BigIntegerField()),
                ("name", models.CharField(max_length=63)),
                (
                    "kind",
                    models.CharField(
                        choices=[("syslog", "Syslog (RFC 5424 over TCP)"), ("webhook", "HTTPS webhook")],
                        max_length=10,
                    ),
                ),
                (
                    "format",
                    models.CharField(choices=[("jsonl", "JSON"), ("ocsf", "OCSF")], default="jsonl", max_length=10),
                ),
                ("enabled", models.BooleanField(default=True)),
                ("host", models.CharField(blank=True, max_length=253)),
                ("port", models.PositiveIntegerField(blank=True, null=True)),
                ("tls", models.BooleanField(default=True)),
                ("url", models.CharField(blank=True, max_length=500)),
                ("secret_encrypted", models.TextField(blank=True)),
                ("ca_certificate", models.TextField(blank=True)),
                ("cursor", models.BigIntegerField(default=0)),
                ("delivered_at", models.DateTimeField(blank=True, null=True)),
                ("failures", models.PositiveIntegerField(default=0)),
                ("next_attempt_at", models.DateTimeField(blank=True, null=True)),
                ("last_error_code", models.CharField(blank=True, max_length=64)),
                ("last_error", models.CharField(blank=True, max_length=500)),
                ("created_by", models.CharField(blank=True, max_length=255)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_by", models.CharField(blank=True, max_length=255)),
                ("updated_at", models.DateTimeField()),
            ],
            options={
                "ordering": ["tenant_id", "name"],
                "constraints": [models.UniqueConstraint(fields=("tenant_id", "name"), name="audit_sink_name")],
            },
        ),
        migrations.RunSQL(SQL, REVERSE),
    ]
