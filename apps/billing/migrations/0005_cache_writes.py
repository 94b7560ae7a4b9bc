"""Cache writes, a fourth kind of token: their count on the ledger and its daily roll-up, and an
optional price per million on the price list (NULL: the input price, as before).

Each column is added with a default kept in the database, so PostgreSQL adds it without rewriting
the table or touching a row, its non-negative check included (foundry/db/counters.py): the
ledger's append-only triggers and the Row-Level Security policies (on `tenant_id`) are not
involved, and INSERTs that name no such column write 0."""

from django.db import migrations, models

from foundry.db.counters import counter_added


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
        counter_added(
            "usageday",
            "cache_write_tokens",
            models.PositiveBigIntegerField(db_default=0, default=0),
            table="billing_usage_day",
            column_type="bigint",
            keep_default=True,
        ),
        counter_added(
            "usagerecord",
            "cache_write_tokens",
            models.PositiveIntegerField(db_default=0, default=0),
            table="billing_usage",
            column_type="integer",
            keep_default=True,
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
