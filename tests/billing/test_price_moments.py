"""`manage.py set_price --from` with a moment without a UTC offset reads it as UTC; a price set a
moment in the past (a form's "now" sent a little while ago) starts now, never before calls
already priced with the previous one."""

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.billing.models import Price
from apps.billing.services import price_set
from apps.runs.usage import usage_record


def test_set_price_from_a_moment_without_an_offset_is_taken_as_utc(db):
    out = io.StringIO()
    call_command(
        "set_price", "openai", "gpt-naive", "--input", "1", "--output", "2", "--from", "2030-01-01T00:00:00",
        stdout=out,
    )  # fmt: skip
    price = Price.objects.get(provider="openai", model="gpt-naive")
    assert price.effective_from == datetime(2030, 1, 1, tzinfo=UTC)


def test_a_price_cannot_start_before_usage_already_priced_with_the_previous_one(acme):
    with schema_context("public"):
        Price.objects.create(
            provider="openai", model="gpt-grace", input_per_mtok=Decimal("1"), output_per_mtok=Decimal("1"),
            cached_per_mtok=Decimal("1"), effective_from=timezone.now() - timedelta(days=1), created_by="test",
        )  # fmt: skip
    with schema_context(acme.schema_name):
        call = usage_record(
            tenant_id=acme.pk, project="p", agent="a", run_id=None, step=None, provider="openai",
            model="gpt-grace", input_tokens=1_000_000, output_tokens=0,
        )  # fmt: skip
    assert call.cost_usd == Decimal("1")  # priced with the price in effect when it was recorded

    try:
        price = price_set(
            actor="ops", provider="openai", model="gpt-grace", input_per_mtok="5", output_per_mtok="5",
            cached_per_mtok="5", effective_from=call.created_at - timedelta(seconds=20),
        )  # fmt: skip
    except ValidationError as refused:
        assert "price_in_past" in {e.code for errors in refused.error_dict.values() for e in errors}
        return
    assert price.effective_from > call.created_at, (
        f"the price of 5 USD is recorded as in effect from {price.effective_from.isoformat()}, before a call "
        f"at {call.created_at.isoformat()} that was billed at 1 USD"
    )
