"""Sign-in must not tell an outsider which address of an SSO-required workspace still accepts a
password. With `sso_required`, LoginForm.clean (apps/accounts/forms.py) answers every address
except the break-glass owner's with "passwords are disabled" before any password check, and the
break-glass owner's with the ordinary wrong-password error: one anonymous POST per guess reveals
the single account worth credential-stuffing (the owner, whom SSO policies do not cover)."""

from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.identity.models import SsoConfiguration


def _sso_required(tenant, break_glass: str) -> None:
    now = timezone.now()
    with schema_context(tenant.schema_name):
        SsoConfiguration.objects.create(
            issuer="https://idp.example",
            client_id="foundry",
            client_secret_encrypted="x",
            authorization_endpoint="https://idp.example/auth",
            token_endpoint="https://idp.example/token",
            jwks_uri="https://idp.example/jwks",
            sso_required=True,
            break_glass_email=break_glass,
            discovered_at=now,
            updated_at=now,
        )


def _errors(response) -> str:
    form = response.context["form"]
    return " ".join(str(e) for e in form.non_field_errors())


def test_wrong_password_answers_do_not_single_out_the_break_glass_owner(acme):
    _sso_required(acme, "owner@acme.test")
    client = Client(HTTP_HOST="acme.localhost")
    guess = client.post("/login/", {"username": "someone@acme.test", "password": "wrong-password-1"})
    owner = client.post("/login/", {"username": "owner@acme.test", "password": "wrong-password-1"})
    assert guess.status_code == owner.status_code == 200
    # An attacker compares the two pages: they must say the same thing.
    assert _errors(guess) == _errors(owner), (_errors(guess), _errors(owner))
