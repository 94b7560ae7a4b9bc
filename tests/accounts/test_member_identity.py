"""Who a member is, whatever credential acts or spelling names them: an API token is the member who
issued it, and an address that normalises (NFKC) to another is not another member."""

import unicodedata

import pytest
from django.core.exceptions import ValidationError
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.services import email_clean, member_add
from apps.tokens.services import token_issue
from tests.api.conftest import api
from tests.conftest import client_for, tenant_user


def test_a_members_own_api_token_cannot_remove_them(acme):
    """An API token acts as the member who issued it (docs/roles.md): refused `remove_self` as
    the member is in the console."""
    admin = tenant_user(acme, "admin@acme.test")
    # The console refuses it.
    console = client_for(acme, "admin@acme.test").post(f"/members/{admin.pk}/remove/")
    assert console.status_code == 400 and b"remove_self" in console.content
    with schema_context("acme"):
        token = token_issue(actor=admin, name="mine", role="admin", scopes=["read", "write", "admin"]).plaintext
    response = api(acme, token).delete(f"/api/v1/members/{admin.pk}")
    assert response.status_code == 400, response.status_code
    assert response.json()["error"]["code"] == "remove_self"
    with schema_context("acme"):
        assert User.objects.filter(pk=admin.pk).exists()


def test_a_fullwidth_lookalike_of_a_members_address_is_not_a_second_member(acme):
    """An address with a compatibility character (a fullwidth `a`, U+FF41) is the plain
    address's mailbox for IDNA (NFKC): it is refused, not a second member next to the owner."""
    with schema_context("acme"):
        owner = User.objects.get(email="owner@acme.test")
        with pytest.raises(ValidationError) as refused:
            member_add(actor=owner, email="owner@\uff41cme.test", role="admin")
        lookalikes = [e for e in User.objects.values_list("email", flat=True) if e != "owner@acme.test"]
    assert "email_invalid" in {error.code for errors in refused.value.error_dict.values() for error in errors}
    assert "owner@\uff41cme.test" not in lookalikes


def test_an_idn_domain_in_decomposed_form_is_accepted_as_its_composed_form():
    """An internationalised domain whose accents arrive decomposed (NFD, as macOS input or an IdP
    may send them) is the same address as its composed form (IDNA maps both alike): accepted, and
    stored composed, so the two spellings are one member."""
    composed = "owner@bücher.de"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert email_clean(composed) == composed
    assert email_clean(decomposed) == composed
