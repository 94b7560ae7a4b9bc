"""Prices: versioned, set from now on, and applied when a usage record is written — a later price
never rewrites what was already recorded; a model without a price leaves the cost empty."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.billing.models import Price
from apps.billing.rls import usage_scope
from apps.billing.services import price_set
from apps.runs.usage import usage_record
from apps.tenants.models import Tenant
from tests.conftest import audit_events


def record(**overrides):
    fields = dict(
        project="p", agent="a", run_id=None, step=None, provider="openai", model="gpt-x",
        input_tokens=1_000_000, output_tokens=100_000, cached_tokens=200_000,
    )  # fmt: skip
    fields.update(overrides)
    with schema_context("acme"):
        return usage_record(tenant_id=Tenant.objects.get(slug="acme").pk, **fields)


def test_a_record_is_priced_with_the_price_in_effect_and_keeps_it(acme):
    Price.objects.create(
        provider="openai", model="gpt-x", input_per_mtok=Decimal("2"), output_per_mtok=Decimal("8"),
        cached_per_mtok=Decimal("0.5"), effective_from=timezone.now() - timedelta(days=1), created_by="test",
    )  # fmt: skip
    first = record()
    # (1,000,000 - 200,000) x 2 + 200,000 x 0.5 + 100,000 x 8, per million = 1.6 + 0.1 + 0.8
    assert first.cost_usd == Decimal("2.5")
    price_set(
        actor="ops", provider="openai", model="gpt-x", input_per_mtok="4", output_per_mtok="8", cached_per_mtok="1"
    )
    second = record()
    assert second.cost_usd == Decimal("4.2")  # 3.2 + 0.2 + 0.8
    with usage_scope(acme.pk):
        first.refresh_from_db()
    assert first.cost_usd == Decimal("2.5")  # history is not rewritten
    assert record(model="unpriced-model").cost_usd is None


def test_a_price_for_the_future_applies_from_then(acme):
    price_set(
        actor="ops", provider="openai", model="gpt-y", input_per_mtok="1", output_per_mtok="1", cached_per_mtok="1",
        effective_from=timezone.now() + timedelta(hours=1),
    )  # fmt: skip
    assert record(model="gpt-y").cost_usd is None


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"input_per_mtok": "-1"}, "price_invalid"),
        ({"output_per_mtok": "1e9"}, "price_invalid"),
        ({"cached_per_mtok": "NaN"}, "price_invalid"),
        ({"input_per_mtok": "cheap"}, "price_invalid"),
        ({"model": "has space"}, "name_invalid"),
        ({"provider": ""}, "name_invalid"),
        ({"effective_from": timezone.now() - timedelta(days=1)}, "price_in_past"),
    ],
)
def test_bad_prices_are_refused_and_change_nothing(db, fields, code):
    from django.core.exceptions import ValidationError

    values = {"provider": "openai", "model": "gpt-z", "input_per_mtok": "1", "output_per_mtok": "2",
              "cached_per_mtok": "0.5", **fields}  # fmt: skip
    with pytest.raises(ValidationError) as refused:
        price_set(actor="ops", **values)
    assert code in {error.code for errors in refused.value.error_dict.values() for error in errors}
    assert not Price.objects.exists()


def test_setting_a_price_is_audited_on_the_platform_chain(db):
    out = io.StringIO()
    call_command("set_price", "anthropic", "claude-x", "--input", "3", "--output", "15", "--cached", "0.3", stdout=out)
    assert "anthropic/claude-x" in out.getvalue()
    events = audit_events("public", action="price.set")
    assert events and events[-1].data["model"] == "claude-x" and events[-1].data["output_per_mtok"] == "15.000000"
    with pytest.raises(CommandError, match="input_per_mtok"):
        call_command("set_price", "anthropic", "claude-x", "--input", "-3", "--output", "15", stdout=io.StringIO())
    with pytest.raises(CommandError, match="ISO 8601"):
        call_command("set_price", "a", "b", "--input", "1", "--output", "1", "--from", "soon", stdout=io.StringIO())
