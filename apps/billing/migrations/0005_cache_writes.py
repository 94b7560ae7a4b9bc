"""Cache writes, a fourth kind of token: their count on the ledger and its daily roll-up, and an
optional price per million on the price list (NULL: the input price, as before).

Each column is added with a default kept in the database, so PostgreSQL adds it without rewriting
the table or touching a row: the ledger's append-only triggers and the Row-Level Security
policies (on `tenant_id`) are not involved, and INSERTs that name no such column write 0."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_alerted_limits"),
    ]

    operations = [
        migrations.AddField(
            model_name="price",
            name="cache_write_per_mtok",
            field=models.DecimalField(blank=True, decimal_places=6, max_digits=12, null=True),
        ),
        migrations.AddField(
            model_name="usageday",
            name="cache_write_tokens",
            field=models.PositiveBigIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="usagerecord",
            name="cache_write_tokens",
            field=models.PositiveIntegerField(db_default=0, default=0),
        ),
        migrations.AddConstraint(
            model_name="price",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("cache_write_per_mtok__isnull", True), ("cache_write_per_mtok__gte", 0), _connector="OR"
                ),
                name="billing_price_cache_write_not_negative",
            ),
        ),
    ]
