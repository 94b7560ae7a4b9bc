from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm

from apps.accounts.permissions import Role


class LoginForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )

    def clean_username(self) -> str:
        # Addresses are stored as email_clean writes them: "Owner@Acme.test" is the same member,
        # as is a@xn--bcher-kva.test a@bücher.test.
        from apps.accounts.services import login_name

        return login_name(self.cleaned_data["username"])

    def clean(self):
        from apps.identity.oidc import sso_config

        config = sso_config()
        email = self.cleaned_data.get("username") or ""
        if config is not None and config.sso_required and email != config.break_glass_email:
            # The page says passwords are disabled here. Refused like any wrong password, with its
            # words and its cost (the password is checked all the same): an answer of its own would
            # tell an outsider which address is the break-glass owner's, the one account SSO does
            # not cover. The code (for the audit event's reason) stays on the server.
            authenticate(self.request, username=email, password=self.cleaned_data.get("password") or "")
            error = self.get_invalid_login_error()
            raise forms.ValidationError(error.message, code="sso_required", params=error.params)
        return super().clean()


class MemberAddForm(forms.Form):
    email = forms.EmailField(max_length=254)
    full_name = forms.CharField(max_length=200, required=False, label="Name")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
