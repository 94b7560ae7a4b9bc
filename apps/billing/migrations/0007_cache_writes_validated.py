"""The non-negative checks 0005 added NOT VALID, validated in a transaction of their own: under a
lock that lets the serving release read and write the tables meanwhile (foundry/db/counters.py).
On a database where they were added valid, nothing to do."""

from django.db import migrations

from foundry.db.counters import counter_validated


class Migration(migrations.Migration):
    dependencies = [("billing", "0006_price_settled")]

    operations = [
        counter_validated("billing_usage_day", "cache_write_tokens"),
        counter_validated("billing_usage", "cache_write_tokens"),
    ]
