"""Database defaults for the NOT NULL columns this app added since the first release: why, in
apps/tokens/migrations/0005_database_defaults.py."""

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
