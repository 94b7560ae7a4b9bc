from django.db import models
from django.db.models import Q


class Price(models.Model):
    """What one model's tokens cost from `effective_from` on (USD per million tokens), in the
    public schema: the platform's price list, edited by operators.

    Prices are versioned, never edited: a new price is a new row. A usage record is priced when
    it is written, with the price in effect then, and keeps that cost (apps/runs/usage.py), so a
    later price changes no history."""

    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=200)
    input_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    output_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    cached_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    effective_from = models.DateTimeField()
    created_by = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["provider", "model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "model", "effective_from"], name="billing_price_once"),
            models.CheckConstraint(
                condition=Q(input_per_mtok__gte=0) & Q(output_per_mtok__gte=0) & Q(cached_per_mtok__gte=0),
                name="billing_price_not_negative",
            ),
        ]
        indexes = [models.Index(fields=["provider", "model", "-effective_from"], name="billing_price_lookup")]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} from {self.effective_from:%Y-%m-%d %H:%M}"
