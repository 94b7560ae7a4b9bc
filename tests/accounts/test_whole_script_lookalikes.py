"""Member addresses whose domain label is written wholly in Cyrillic look-alikes of Latin letters
(a whole-script confusable, UTS #39 §4) are refused like mixed-script ones, under an ASCII
top-level domain; a Cyrillic name under a Cyrillic one is not (found by the identifiers review)."""

import pytest
from django.core.exceptions import ValidationError
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import email_clean, member_add
from tests.conftest import tenant_user

LATIN = "ceo@coca.test"
# Every letter of the label Cyrillic (U+0441 U+043E U+0441 U+0430): one script, so the mixed-script
# rule lets it through, yet it is drawn exactly as Latin "coca".
CYRILLIC = "ceo@\u0441\u043e\u0441\u0430.test"


def test_a_domain_label_wholly_in_cyrillic_look_alikes_is_not_a_second_member_reading_as_the_first(acme):
    """A label mixing scripts was refused, but one written wholly in Cyrillic look-alikes of Latin
    letters (Cyrillic `coca`) was not: both addresses became members, which the members page, the
    invitations and the audit trail show identically, so one member read as another."""
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        member_add(actor=owner, email=LATIN, role=Role.VIEWER, full_name="")
        with pytest.raises(ValidationError):
            member_add(actor=owner, email=CYRILLIC, role=Role.ADMIN, full_name="")
        both = set(User.objects.filter(email__in=[LATIN, CYRILLIC]).values_list("email", flat=True))
    assert both == {LATIN}


@pytest.mark.parametrize("address", [CYRILLIC, "owner@\u0430\u0440\u0440\u04cf\u0435.test"])
def test_whole_script_confusable_domains_are_refused_like_mixed_script_ones(address):
    """Cyrillic `coca.test` and `apple.test` look-alikes: refused."""
    with pytest.raises(ValidationError):
        email_clean(address)


@pytest.mark.parametrize(
    "address", ["x@\u044f\u043d\u0434\u0435\u043a\u0441.test", "x@\u0441\u043e\u0441\u0430.\u0440\u0444"]
)
def test_cyrillic_names_that_do_not_read_as_latin_ones_are_kept(address):
    """A Cyrillic label with letters Latin has no look-alike of, or any under a Cyrillic TLD."""
    assert email_clean(address) == address
