"""A member is found by the one spelling addresses are stored in (`email_clean`), compared exactly,
and no address that reads as another member's is a member of its own.

`bob@acme<U+0131>.test` (a dotless i: its own IDNA domain) and `bob@acmei.test` are two mailboxes:
a case-insensitive comparison (PostgreSQL upper-cases the dotless i to I) would read them as one.
(Such an address is no longer admitted — its label is drawn as the ASCII one — but a member may
hold one from before: stored directly here.)
And a domain label mixing scripts (a Cyrillic U+0430 before Latin "cme") reads exactly as another
address wherever it is shown: refused as `email_invalid`, as browsers show such a name as punycode (UTS #39)."""

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import email_clean, member_add
from apps.lifecycle.erasure import member_erase
from tests.conftest import audit_events, tenant_user

DOTLESS = "bob@acme\u0131.test"  # a dotless i
PLAIN = "bob@acmei.test"


def test_erasing_an_address_that_is_no_member_does_not_erase_its_dotless_i_twin(acme):
    """Erasing an address that is and was no member is refused (`person_unknown`); the member whose
    domain has a dotless i keeps their account."""
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        twin = User.objects.create_user(DOTLESS, None, role=Role.VIEWER)
        with pytest.raises(ValidationError) as refused:
            member_erase(actor=owner, email=PLAIN)
        assert refused.value.code == "person_unknown"
        assert User.objects.filter(pk=twin.pk, email=DOTLESS).exists()


def test_a_failed_sign_in_as_an_address_that_is_no_member_is_not_recorded_against_its_twin(acme):
    """A failed sign-in names the member it was for, or a keyed hash of the name typed when no
    member has it: never the member whose address differs by a dotless i."""
    with schema_context(acme.schema_name):
        User.objects.create_user(DOTLESS, None, role=Role.VIEWER)
    client = Client(HTTP_HOST="acme.localhost")
    client.post("/login/", {"username": PLAIN, "password": "wrong"})
    (event,) = audit_events("acme", action="auth.login.failed")
    assert event.target_type == "login"


LOOKALIKE = "owner@\u0430cme.test"  # Cyrillic a (U+0430), then Latin "cme"


def test_an_address_spelt_like_the_owners_with_a_cyrillic_letter_is_not_a_second_member(acme):
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        with pytest.raises(ValidationError) as caught:
            member_add(actor=owner, email=LOOKALIKE, role=Role.VIEWER, full_name="")
        assert caught.value.error_dict["email"][0].code == "email_invalid"
        assert not User.objects.filter(email=LOOKALIKE).exists()


@pytest.mark.parametrize("address", ["a@acme.te\u0455t", "a@\u0430cme.test", "a@x-\u03bf.test"])
def test_a_domain_label_mixing_scripts_is_refused(address):
    """A Cyrillic s in Latin `test`, a Cyrillic a in Latin `acme`, a Greek o after Latin `x-`."""
    with pytest.raises(ValidationError):
        email_clean(address)


@pytest.mark.parametrize(
    "address",
    ["a@bücher.test", "a@пример.рф", "a@ελληνικά.gr", "a@例え.jp", "a@ファイル.jp", "a@한국.kr", "a@straße.de"],
)
def test_a_domain_written_in_one_script_or_a_usual_east_asian_mix_is_an_address(address):
    assert email_clean(address) == address


def test_a_member_stored_before_mixed_script_labels_were_refused_can_still_be_erased(acme):
    """Erasure serves a data-subject request for anyone who is or was a member: one whose address
    was stored before the rule is erased by that address, as stored."""
    legacy = "bob@\u0430cme.test"  # a Cyrillic U+0430 for the `a`
    with schema_context(acme.schema_name):
        member = User.objects.create(email=legacy, role=Role.VIEWER)
        assert member_erase(actor="cli:erase_member", email=legacy).member_removed
        assert not User.objects.filter(pk=member.pk).exists()
        with pytest.raises(ValidationError):  # an address no one has: refused as before
            member_erase(actor="cli:erase_member", email="eve@\u0430cme.test")
