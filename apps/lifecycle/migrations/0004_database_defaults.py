"""Database defaults for the NOT NULL columns this app added since the first release: why, in
apps/tokens/migrations/0005_database_defaults.py."""

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
