"""The running time of steps a worker's soft time limit cut off (engine.py): a constant default,
so the column is added without rewriting the table."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0012_run_attempt_validated'),
    ]

    operations = [
        migrations.AddField(
            model_name='run',
            name='interrupted_ms',
            field=models.FloatField(db_default=0.0, default=0.0),
        ),
    ]
