"""The operator console's forms. The limits forms only parse text into whole numbers (empty:
None); `tenant_limits_set` and `plan_update` judge every value, so their codes are the verdict."""

import re

from django import forms
from django.core.exceptions import ValidationError

from apps.tenants.models import Tenant
from apps.tenants.services import tenant_slug_validate

_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")
LIMIT_LABELS = {
    "requests_per_second": "Requests/s",
    "burst": "Burst",
    "concurrent_runs": "Concurrent runs",
    "monthly_tokens": "Monthly tokens",
}


class TenantCreateForm(forms.Form):
    slug = forms.CharField(max_length=100, help_text="Lowercase letters, digits and hyphens.")
    name = forms.CharField(max_length=200)
    plan = forms.ChoiceField(choices=Tenant.Plan.choices, initial=Tenant.Plan.FREE)
    owner_email = forms.EmailField(max_length=254, label="Owner email")

    def clean_slug(self) -> str:
        return tenant_slug_validate(self.cleaned_data["slug"].strip())


class WholeNumberField(forms.CharField):
    """ASCII digits with an optional sign, as an int; empty: None. Whether the number is allowed
    is the service's to say ("1e3", "NaN", "true", "1.5" and fullwidth digits are not whole numbers here)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 40)
        kwargs.setdefault("widget", forms.TextInput({"inputmode": "numeric", "size": 12}))
        super().__init__(**kwargs)

    def clean(self, value) -> int | None:
        text = super().clean(value)  # the text's own checks (length, NUL) first
        if text in self.empty_values:
            return None
        if not _WHOLE_NUMBER.fullmatch(text):
            raise ValidationError("Enter a whole number, like 250.", code="invalid")
        return int(text)


class TenantLimitsForm(forms.Form):
    """A tenant's overrides, one field per limit; empty: the plan's value. A save changes only the
    fields its user changed on the page (each carries the value it was shown with): a page opened
    before another operator's change, or a post without a field, does not undo that override."""

    requests_per_second = WholeNumberField(label=LIMIT_LABELS["requests_per_second"], show_hidden_initial=True)
    burst = WholeNumberField(label=LIMIT_LABELS["burst"], show_hidden_initial=True)
    concurrent_runs = WholeNumberField(label=LIMIT_LABELS["concurrent_runs"], show_hidden_initial=True)
    monthly_tokens = WholeNumberField(label=LIMIT_LABELS["monthly_tokens"], show_hidden_initial=True)

    def changes(self) -> dict:
        """The overrides changed on the page, for `tenant_limits_set`."""
        return {name: self.cleaned_data[name] for name in self.changed_data}


class PlanUpdateForm(forms.Form):
    """One plan's values; an empty monthly_tokens is unlimited (every other is required)."""

    plan = forms.CharField(required=False, max_length=40, widget=forms.Select(choices=Tenant.Plan.choices))
    requests_per_second = WholeNumberField(label=LIMIT_LABELS["requests_per_second"])
    burst = WholeNumberField(label=LIMIT_LABELS["burst"])
    concurrent_runs = WholeNumberField(label=LIMIT_LABELS["concurrent_runs"])
    monthly_tokens = WholeNumberField(label="Monthly tokens (empty: unlimited)")
