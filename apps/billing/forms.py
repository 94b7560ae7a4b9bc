"""The operator's form for a new price version. It only parses; `price_set` judges the values."""

from datetime import UTC

from django import forms
from django.core.exceptions import ValidationError


class PriceSetForm(forms.Form):
    # Names and amounts go to price_set as typed, so its codes (name_invalid, price_invalid) are
    # the only verdict.
    provider = forms.CharField(required=False)
    model = forms.CharField(required=False)
    input_per_mtok = forms.CharField(required=False, label="Input", widget=forms.TextInput({"inputmode": "decimal"}))
    output_per_mtok = forms.CharField(required=False, label="Output", widget=forms.TextInput({"inputmode": "decimal"}))
    cached_per_mtok = forms.CharField(
        required=False, label="Cached input", widget=forms.TextInput({"inputmode": "decimal"})
    )
    cache_write_per_mtok = forms.CharField(
        required=False, label="Cache write (empty: input)", widget=forms.TextInput({"inputmode": "decimal"})
    )
    effective_from = forms.DateTimeField(
        required=False,
        label="From (UTC; empty: now)",
        widget=forms.DateTimeInput({"type": "datetime-local", "step": "1"}, format="%Y-%m-%dT%H:%M:%S"),
    )

    def clean_effective_from(self):
        value = self.cleaned_data["effective_from"]
        if value is None:
            return None
        try:
            # A moment with an offset can fall past year 9999 in UTC, which no row can hold.
            return value.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Enter a moment before the year 10000.", code="invalid") from None


class BudgetSetForm(forms.Form):
    """A workspace's or project's monthly budget. Only parses: `budget_set` judges every value
    (project_invalid, budget_invalid, on_exhausted_invalid)."""

    project = forms.CharField(required=False, label="Project (empty: the whole workspace)")
    monthly_tokens = forms.CharField(
        required=False, label="Tokens a month", widget=forms.TextInput({"inputmode": "numeric"})
    )
    monthly_cost_usd = forms.CharField(
        required=False, label="USD a month", widget=forms.TextInput({"inputmode": "decimal"})
    )
    on_exhausted = forms.CharField(
        required=False,
        label="When spent",
        widget=forms.Select(choices=[("stop", "Stop the run"), ("approve", "Ask for approval")]),
    )
