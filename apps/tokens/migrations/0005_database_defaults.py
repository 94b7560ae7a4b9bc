"""Database defaults for the NOT NULL columns added since the first release (as runs 0009):
the release before, which serves on while migrate_platform runs (docs/operations/deployment.md),
inserts without naming them, and so does the import of an archive it made (docs/export.md:
"Columns the archive lacks (an older schema) take their defaults"). Setting a default rewrites
no row (tests/tenants/test_upgrade_in_place.py)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tokens', '0004_revoked_shut_out'),
    ]

    operations = [
        migrations.AlterField(
            model_name='apitoken',
            name='revoked_reason',
            field=models.CharField(blank=True, choices=[('issuer_removed', 'Issuer removed'), ('issuer_demoted', "Issuer's role lowered"), ('token_revoked', 'Issuing token revoked'), ('issuer_shut_out', 'Issuer can no longer sign in')], db_default='', max_length=20),
        ),
    ]
