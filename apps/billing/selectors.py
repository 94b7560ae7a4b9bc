"""Reads of the price list."""

from django.db.models import BooleanField, ExpressionWrapper, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from apps.billing.models import Price


def price_list() -> QuerySet[Price]:
    """Every price version, newest first per provider/model, each marked `is_current` (the one a
    usage record written now is priced with) or `is_scheduled` (starts later)."""
    now = timezone.now()
    in_effect = Price.objects.filter(
        provider=OuterRef("provider"), model=OuterRef("model"), effective_from__lte=now
    ).order_by("-effective_from")
    return Price.objects.annotate(
        is_current=ExpressionWrapper(Q(pk=Subquery(in_effect.values("pk")[:1])), output_field=BooleanField()),
        is_scheduled=ExpressionWrapper(Q(effective_from__gt=now), output_field=BooleanField()),
    ).order_by("provider", "model", "-effective_from")
