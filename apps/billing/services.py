"""The price list: set a price (a new version, never an edit), and the SQL that prices a usage record."""

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.models import PLATFORM
from apps.audit.services import audit_record
from apps.billing.models import Price

MAX_PER_MTOK = Decimal("10000")  # USD per million tokens; nothing sold today costs near this
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")
_NAME_LENGTH = {
    "provider": Price._meta.get_field("provider").max_length,
    "model": Price._meta.get_field("model").max_length,
}

# The cost of a usage row: (input - cached) at the input price, cached at the cached price, output
# at the output price; input counts cached tokens (both providers' usage is mapped that way).
# NULL when no price was in effect for that provider and model at that moment.
COST_SQL = (
    "(SELECT ((%s - %s) * p.input_per_mtok + %s * p.cached_per_mtok + %s * p.output_per_mtok) / 1000000"
    " FROM public.billing_price p WHERE p.provider = %s AND p.model = %s AND p.effective_from <= %s"
    " ORDER BY p.effective_from DESC LIMIT 1)"
)


def cost_params(*, provider: str, model: str, input_tokens: int, output_tokens: int, cached_tokens: int, at) -> list:
    return [input_tokens, cached_tokens, cached_tokens, output_tokens, provider, model, at]


def _amount(value, field: str) -> Decimal:
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationError({field: ValidationError("A price is a number of USD.", code="price_invalid")}) from None
    if not amount.is_finite() or amount < 0 or amount > MAX_PER_MTOK:
        raise ValidationError(
            {field: ValidationError(f"A price is 0 to {MAX_PER_MTOK} USD per million tokens.", code="price_invalid")}
        )
    return amount.quantize(Decimal("0.000001"))


@transaction.atomic
def price_set(
    *,
    actor,
    provider: str,
    model: str,
    input_per_mtok,
    output_per_mtok,
    cached_per_mtok,
    effective_from=None,
    request=None,
) -> Price:
    """A new price for `provider`/`model` from `effective_from` (default: now). Past moments are
    refused: what was recorded then was priced then, and a price cannot reach back."""
    errors = {}
    for field, value in (("provider", provider), ("model", model)):
        if not isinstance(value, str) or not _NAME.match(value) or len(value) > _NAME_LENGTH[field]:
            message = f"A {field} name of 1 to {_NAME_LENGTH[field]} letters, digits or ._:/@+-."
            errors[field] = ValidationError(message, code="name_invalid")
    if errors:
        raise ValidationError(errors)
    amounts = {
        "input_per_mtok": _amount(input_per_mtok, "input_per_mtok"),
        "output_per_mtok": _amount(output_per_mtok, "output_per_mtok"),
        "cached_per_mtok": _amount(cached_per_mtok, "cached_per_mtok"),
    }
    now = timezone.now()
    effective_from = effective_from or now
    if effective_from < now - timedelta(minutes=1):
        raise ValidationError(
            {"effective_from": ValidationError("A price starts now or later, not in the past.", code="price_in_past")}
        )
    exists = ValidationError(
        {"effective_from": ValidationError("A price already starts at that moment.", code="price_exists")}
    )
    if Price.objects.filter(provider=provider, model=model, effective_from=effective_from).exists():
        raise exists
    try:
        with transaction.atomic():  # one set at the same moment by someone else meanwhile: the same answer
            price = Price.objects.create(
                provider=provider, model=model, effective_from=effective_from, created_by=str(actor)[:255], **amounts
            )
    except IntegrityError:
        raise exists from None
    audit_record(
        action="price.set",
        actor=actor,
        target=price,
        data={
            "provider": provider,
            "model": model,
            "effective_from": effective_from.isoformat(),
            **{k: str(v) for k, v in amounts.items()},
        },
        chain=PLATFORM,
        request=request,
    )
    return price
