from django import forms

from apps.tenants.models import Tenant
from apps.tenants.services import tenant_slug_validate


class TenantCreateForm(forms.Form):
    slug = forms.CharField(max_length=100, help_text="Lowercase letters, digits and hyphens.")
    name = forms.CharField(max_length=200)
    plan = forms.ChoiceField(choices=Tenant.Plan.choices, initial=Tenant.Plan.FREE)
    owner_email = forms.EmailField(max_length=254, label="Owner email")

    def clean_slug(self) -> str:
        return tenant_slug_validate(self.cleaned_data["slug"].strip())
