"""Pricing a usage record waits for a price being set for its model to commit.

`price_set` holds the model's lock (an advisory lock, exclusive) from before it reads the time it
gives the price until it commits; the usage statement prices its record through `billing_cost`,
which takes the same lock shared and only then reads the price list. A VOLATILE function's query
takes a snapshot of its own, after the wait: so a record written while a price is being set for
"now" sees it once it has committed, never the list as it was when the statement began (it was
priced with the price before, for good). Records of other models never wait."""

from django.db import migrations

FUNCTION = """
CREATE FUNCTION public.billing_cost(p_input bigint, p_cached bigint, p_cache_write bigint, p_output bigint,
                                    p_provider text, p_model text, p_at timestamptz) RETURNS numeric
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cost numeric;
BEGIN
    -- The key foundry/db/locks.py xact_lock gives the name price_set locks.
    PERFORM pg_catalog.pg_advisory_xact_lock_shared(
        pg_catalog.hashtext('billing-price:' || p_provider || '/' || p_model));
    SELECT ((p_input - p_cached - p_cache_write) * p.input_per_mtok + p_cached * p.cached_per_mtok
            + p_cache_write * coalesce(p.cache_write_per_mtok, p.input_per_mtok)
            + p_output * p.output_per_mtok) / 1000000
      INTO cost
      FROM public.billing_price p
     WHERE p.provider = p_provider AND p.model = p_model AND p.effective_from <= p_at
     ORDER BY p.effective_from DESC LIMIT 1;
    RETURN cost;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0005_cache_writes"),
    ]

    operations = [
        migrations.RunSQL(
            FUNCTION,
            "DROP FUNCTION public.billing_cost(bigint, bigint, bigint, bigint, text, text, timestamptz);",
        ),
    ]
