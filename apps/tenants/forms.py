from django import forms

from apps.tenants.models import Tenant


class TenantCreateForm(forms.Form):
    slug = forms.CharField(max_length=100, help_text="Lowercase letters, digits and hyphens.")
    name = forms.CharField(max_length=200)
    plan = forms.ChoiceField(choices=Tenant.Plan.choices, initial=Tenant.Plan.FREE)
    owner_email = forms.EmailField(max_length=254, label="Owner email")
