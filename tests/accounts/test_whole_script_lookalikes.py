"""Member addresses whose domain label is drawn as an ASCII one — every non-ASCII letter of it a
look-alike of an ASCII letter: `coca` in Cyrillic letters (a whole-script confusable, UTS #39 §4),
or `acme` with a Latin alpha U+0251 for its a — are refused like mixed-script ones, under an ASCII top-level domain; a
Cyrillic name under a Cyrillic one is not, nor a label with letters no ASCII letter looks like
(found by the identifiers review, then the Latin and Greek ones by the Unicode review)."""

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


@pytest.mark.parametrize("lookalike", [CYRILLIC, "ceo@coc\u0251.test"])  # Cyrillic; Latin with a Latin alpha
def test_a_domain_label_drawn_as_another_is_not_a_second_member_reading_as_the_first(acme, lookalike):
    """A label mixing scripts was refused, but one written wholly in Cyrillic look-alikes of Latin
    letters (Cyrillic `coca`) was not: both addresses became members, which the members page, the
    invitations and the audit trail show identically, so one member read as another."""
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        member_add(actor=owner, email=LATIN, role=Role.VIEWER, full_name="")
        with pytest.raises(ValidationError):
            member_add(actor=owner, email=lookalike, role=Role.ADMIN, full_name="")
        both = set(User.objects.filter(email__in=[LATIN, lookalike]).values_list("email", flat=True))
    assert both == {LATIN}


@pytest.mark.parametrize(
    "address",
    [
        CYRILLIC,
        "owner@\u0430\u0440\u0440\u04cf\u0435.test",  # Cyrillic apple
        "owner@\u0251cme.test",  # U+0251 LATIN SMALL LETTER ALPHA: one script, drawn as acme
        "owner@acm\u0435.test",  # mixed scripts, as before
        "owner@\u0261oogle.test",  # U+0261 LATIN SMALL LETTER SCRIPT G
        "owner@\u0131bm.test",  # U+0131 dotless i
        "x@\u03bf\u03c1\u03bf.test",  # Greek omicron rho omicron: opo
        "x@\u0585\u0585\u0585.test",  # Armenian oh: ooo
    ],
)
def test_domains_drawn_as_ascii_ones_are_refused_like_mixed_script_ones(address):
    """Cyrillic coca.test and apple.test, Latin acme.test, google.test and ibm.test with a Latin
    alpha, script g or dotless i, Greek and Armenian labels drawn as ASCII: refused."""
    with pytest.raises(ValidationError):
        email_clean(address)


@pytest.mark.parametrize(
    "address",
    [
        "x@\u044f\u043d\u0434\u0435\u043a\u0441.test",  # Cyrillic yandex
        "x@\u0441\u043e\u0441\u0430.\u0440\u0444",  # Cyrillic coca under .рф
        "x@b\u00fccher.test",
        "x@m\u00fcnchen.test",
        "x@stra\u00dfe.test",
        "x@caf\u00e9.test",
        "x@\u03b1\u03b8\u03ae\u03bd\u03b1.test",  # Greek athina: θ, ή are no ASCII letter's double
    ],
)
def test_names_that_do_not_read_as_ascii_ones_are_kept(address):
    """A label with letters no ASCII letter looks like, or any Cyrillic one under a Cyrillic TLD."""
    assert email_clean(address) == address
