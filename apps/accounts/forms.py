from django import forms
from django.contrib.auth.forms import AuthenticationForm

from apps.accounts.permissions import Role


class LoginForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )

    def clean_username(self) -> str:
        # Addresses are stored lowercased (email_clean): "Owner@Acme.test" is the same member.
        return self.cleaned_data["username"].strip().lower()

    def clean(self):
        from apps.identity.oidc import sso_config

        config = sso_config()
        email = self.cleaned_data.get("username") or ""
        if config is not None and config.sso_required and email != config.break_glass_email:
            # Said plainly (and before any password check): this workspace signs in through its IdP.
            raise forms.ValidationError(
                "This workspace signs in with single sign-on; passwords are disabled.", code="sso_required"
            )
        return super().clean()


class MemberAddForm(forms.Form):
    email = forms.EmailField(max_length=254)
    full_name = forms.CharField(max_length=200, required=False, label="Name")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
