"""Database defaults for the NOT NULL columns added since the first release (as runs 0009):
the release before, which serves on while migrate_platform runs (docs/operations/deployment.md),
inserts without naming them, and so does the import of an archive it made (docs/export.md:
"Columns the archive lacks (an older schema) take their defaults"). Setting a default rewrites
no row (tests/tenants/test_upgrade_in_place.py)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('identity', '0002_login'),
    ]

    operations = [
        migrations.AlterField(
            model_name='ssoconfiguration',
            name='audience',
            field=models.CharField(blank=True, db_default='', help_text='Audience of API access tokens; empty: the client id.', max_length=500),
        ),
        migrations.AlterField(
            model_name='ssoconfiguration',
            name='iss_parameter_supported',
            field=models.BooleanField(db_default=False, default=False),
        ),
    ]
