"""Database defaults for the NOT NULL columns added since the first release (as runs 0009):
the release before, which serves on while migrate_platform runs (docs/operations/deployment.md),
inserts without naming them, and so does the import of an archive it made (docs/export.md:
"Columns the archive lacks (an older schema) take their defaults"). Setting a default rewrites
no row (tests/tenants/test_upgrade_in_place.py)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('lifecycle', '0003_export_attempts'),
    ]

    operations = [
        migrations.AlterField(
            model_name='export',
            name='attempts',
            field=models.PositiveSmallIntegerField(db_default=0, default=0),
        ),
        migrations.AlterField(
            model_name='export',
            name='password_hashes',
            field=models.BooleanField(db_default=False, default=False),
        ),
    ]
