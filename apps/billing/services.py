"""The price list: set a price (a new version, never an edit), and the SQL that prices a usage record."""

import re
from datetime import UTC, timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.permissions import Permission
from apps.accounts.services import allowed_now
from apps.audit.models import PLATFORM
from apps.audit.services import audit_record
from apps.billing.models import Budget, Price
from apps.billing.quotas import budgets_cache_clear
from apps.billing.rls import usage_scope
from apps.tokens.models import Scope
from foundry.db.locks import xact_lock

MAX_PER_MTOK = Decimal("10000")  # USD per million tokens; nothing sold today costs near this
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*\Z")
_NAME_LENGTH = {
    "provider": Price._meta.get_field("provider").max_length,
    "model": Price._meta.get_field("model").max_length,
}

# The cost of a usage row: input less cached and cache writes at the input price, cached at the
# cached price, cache writes at the cache-write price (none set: the input price), output at the
# output price; input counts cached tokens and cache writes (every provider's usage is mapped that
# way). NULL when no price was in effect for that provider and model at that moment.
# The cost of a record, priced once any price being set for its model has committed (migration 0006).
COST_SQL = "public.billing_cost(%s, %s, %s, %s, %s, %s, %s)"


def cost_params(
    *,
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int,
    at,
    cache_write_tokens: int = 0,
) -> list:
    """The parameters of COST_SQL, in its order."""
    return [input_tokens, cached_tokens, cache_write_tokens, output_tokens, provider, model, at]


_MICRO = Decimal("0.000001")


# Typed amounts are ASCII digits: int() and Decimal() also read other scripts' digits (fullwidth,
# Arabic-Indic…) and Decimal() exponents and NaN. Whole numbers may group thousands with "," or "_".
_WHOLE_TEXT = re.compile(r"[+-]?(?:[0-9]{1,3}(?:[,_][0-9]{3})+|[0-9]+)")
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def _decimal(value) -> Decimal:
    """`value` (a decimal's text, or a number) as a Decimal; ValueError if it is neither."""
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal | float):
        raise ValueError(value)
    if isinstance(value, str) and not _DECIMAL_TEXT.fullmatch(value := value.strip()):
        raise ValueError(value)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(value) from None


def _amount(value, field: str) -> Decimal:
    try:
        amount = _decimal(value)
    except ValueError:
        raise ValidationError({field: ValidationError("A price is a number of USD.", code="price_invalid")}) from None
    if not amount.is_finite() or amount < 0 or amount > MAX_PER_MTOK:
        raise ValidationError(
            {field: ValidationError(f"A price is 0 to {MAX_PER_MTOK} USD per million tokens.", code="price_invalid")}
        )
    if amount != amount.quantize(_MICRO):  # rounding would change it, to 0 at worst: the model free
        raise ValidationError(
            {field: ValidationError("A price has at most 6 decimals (USD per million tokens).", code="price_invalid")}
        )
    return amount.quantize(_MICRO)


@transaction.atomic
def price_set(
    *,
    actor,
    provider: str,
    model: str,
    input_per_mtok,
    output_per_mtok,
    cached_per_mtok,
    cache_write_per_mtok=None,
    effective_from=None,
    request=None,
) -> Price:
    """A new price for `provider`/`model` from `effective_from` (default: now). Past moments are
    refused: what was recorded then was priced then, and a price cannot reach back. A moment up
    to a minute past (a form's "now", sent a little while ago) starts now. `cache_write_per_mtok`
    may be left out (None or ""): cache writes then cost the input price."""
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
        "cache_write_per_mtok": None
        if cache_write_per_mtok is None or cache_write_per_mtok == ""
        else _amount(cache_write_per_mtok, "cache_write_per_mtok"),
    }
    # Held to the commit: a record of this model priced meanwhile waits for the new price, which
    # starts at a moment read after the lock (migration 0006), and then sees it.
    xact_lock(f"billing-price:{provider}/{model}")
    now = timezone.now()
    effective_from = effective_from or now
    try:  # PostgreSQL stores offsets up to ±15:59 only; Python reads up to ±23:59
        effective_from = effective_from.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValidationError(
            {"effective_from": ValidationError("That moment is out of range once in UTC.", code="price_invalid")}
        ) from None
    if effective_from < now - timedelta(minutes=1):
        raise ValidationError(
            {"effective_from": ValidationError("A price starts now or later, not in the past.", code="price_in_past")}
        )
    effective_from = max(effective_from, now)  # never before calls already priced with the previous one
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
            **{k: None if v is None else str(v) for k, v in amounts.items()},
        },
        chain=PLATFORM,
        request=request,
    )
    return price


# --- budgets ------------------------------------------------------------------------------------

MAX_MONTHLY_TOKENS = 10**13
MAX_MONTHLY_COST_USD = Decimal("100000000")
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{0,62}\Z")  # a manifest's project name


def _budget_tokens(value) -> int | None:
    if value is None or value == "":
        return None
    invalid = ValidationError({"monthly_tokens": ValidationError("A whole number of tokens.", code="budget_invalid")})
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise invalid
    if isinstance(value, str):
        if len(value) > 100 or not _WHOLE_TEXT.fullmatch(value := value.strip()):
            raise invalid  # past 100 characters no number of tokens is whole and in range (int() refuses 4,300 digits)
        value = int(value.replace("_", "").replace(",", ""))
    tokens = value
    if not 0 <= tokens <= MAX_MONTHLY_TOKENS:
        raise ValidationError(
            {"monthly_tokens": ValidationError(f"0 to {MAX_MONTHLY_TOKENS:,} tokens a month.", code="budget_invalid")}
        )
    return tokens


def _budget_cost(value) -> Decimal | None:
    if value is None or value == "":
        return None
    invalid = ValidationError({"monthly_cost_usd": ValidationError("An amount of USD.", code="budget_invalid")})
    try:
        amount = _decimal(value)
    except ValueError:
        raise invalid from None
    if not amount.is_finite() or not 0 <= amount <= MAX_MONTHLY_COST_USD:
        raise ValidationError(
            {"monthly_cost_usd": ValidationError(f"0 to {MAX_MONTHLY_COST_USD:,} USD a month.", code="budget_invalid")}
        )
    if amount != amount.quantize(Decimal("0.01")):
        # Rounded, 0.004 would become a budget of 0.00, which stops every model call.
        raise ValidationError(
            {"monthly_cost_usd": ValidationError("An amount in whole cents (2 decimals).", code="budget_invalid")}
        )
    return amount.quantize(Decimal("0.01"))


# Who sets budgets (the API's PUT /budgets, the console's usage page); also who approves a run's
# overage past one (apps/runs/services.py).
BUDGETS_ACCESS = (Permission.SETTINGS_MANAGE, Scope.ADMIN)


@transaction.atomic
def budget_set(
    *,
    actor,
    tenant_id: int,
    project: str,
    monthly_tokens=None,
    monthly_cost_usd=None,
    on_exhausted="stop",
    request=None,
) -> Budget | None:
    """Set the workspace's (`project` "") or a project's monthly budget; with neither amount, remove
    it. The budget binds from the next model call on (apps/billing/quotas.py); audited."""
    actor = allowed_now(actor, *BUDGETS_ACCESS)  # as they stand now, not as the request began
    errors = {}
    if not isinstance(project, str) or (project and not _PROJECT.match(project)):
        errors["project"] = ValidationError(
            "A project name (lower-case letters, digits and -, 1 to 63), or empty for the whole workspace.",
            code="project_invalid",
        )
    if on_exhausted not in Budget.OnExhausted.values:
        errors["on_exhausted"] = ValidationError(
            f"One of {', '.join(Budget.OnExhausted.values)}.", code="on_exhausted_invalid"
        )
    amounts = {}
    for field, parse, value in (
        ("monthly_tokens", _budget_tokens, monthly_tokens),
        ("monthly_cost_usd", _budget_cost, monthly_cost_usd),
    ):
        try:
            amounts[field] = parse(value)
        except ValidationError as exc:
            errors.update(exc.error_dict)
    if errors:
        raise ValidationError(errors)
    with usage_scope(tenant_id):
        # Locked, even before it exists: of two removals at once, the second finds the budget gone,
        # and of two first sets, the second finds it set as it would set it; neither records anything.
        xact_lock(f"billing.budget:{tenant_id}:{project}")
        current = Budget.objects.select_for_update().filter(tenant_id=tenant_id, project=project).first()
        if amounts["monthly_tokens"] is None and amounts["monthly_cost_usd"] is None:
            if current is not None:
                current.delete()
                audit_record(action="budget.delete", actor=actor, target=f"budget:{project or '*'}", request=request)
            budget = None
        elif current is not None and (current.monthly_tokens, current.monthly_cost_usd, current.on_exhausted) == (
            amounts["monthly_tokens"],
            amounts["monthly_cost_usd"],
            on_exhausted,
        ):
            budget = current  # set again as it is: nothing changes, nothing to record
        else:
            budget, _ = Budget.objects.update_or_create(
                tenant_id=tenant_id,
                project=project,
                defaults={**amounts, "on_exhausted": on_exhausted, "updated_by": str(actor)[:255]},
            )
            audit_record(
                action="budget.set",
                actor=actor,
                target=f"budget:{project or '*'}",
                data={
                    "project": project,
                    "monthly_tokens": amounts["monthly_tokens"],
                    "monthly_cost_usd": None
                    if amounts["monthly_cost_usd"] is None
                    else str(amounts["monthly_cost_usd"]),
                    "on_exhausted": on_exhausted,
                },
                request=request,
            )
    transaction.on_commit(lambda: budgets_cache_clear(tenant_id))
    budgets_cache_clear(tenant_id)
    return budget
