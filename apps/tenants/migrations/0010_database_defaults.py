"""Database defaults for the NOT NULL columns this app added since the first release: why, in
apps/tokens/migrations/0005_database_defaults.py."""

import django.contrib.postgres.fields
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tenants', '0009_status_before_deletion'),
    ]

    operations = [
        migrations.AlterField(
            model_name='tenant',
            name='deletion_requested_by',
            field=models.CharField(blank=True, db_default='', max_length=255),
        ),
        migrations.AlterField(
            model_name='tenant',
            name='http_allowed_networks',
            field=django.contrib.postgres.fields.ArrayField(base_field=models.CharField(max_length=50), blank=True, db_default=[], default=list, size=None),
        ),
        migrations.AlterField(
            model_name='tenant',
            name='status_before_deletion',
            field=models.CharField(blank=True, db_default='', max_length=20),
        ),
        migrations.AlterField(
            model_name='tenant',
            name='trace_content',
            field=models.BooleanField(db_default=False, default=False),
        ),
    ]
