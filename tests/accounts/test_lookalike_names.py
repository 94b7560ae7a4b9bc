"""Unicode look-alikes in the names that identify or show a member: an address that reads as
another's is refused, and so is a name that shows nothing."""

import pytest
from django.core.exceptions import ValidationError
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.services import email_clean
from tests.api.conftest import api, issue

DOTLESS_I = "\u0131"  # LATIN SMALL LETTER DOTLESS I: "\u0131".upper() == "I"


@pytest.mark.parametrize("local", [f"adm{DOTLESS_I}n", "\u0130nfo", "ad\u017fmin", "\u00e9lodie"])
def test_only_ascii_is_taken_before_the_at(local):
    """Django's EmailValidator matches the local part with [A-Z] under IGNORECASE, which in Python
    also takes U+0130, U+0131, U+017F and U+212A: `adm\u0131n@acme.test` would read as admin@acme.test
    and upper-case to ADMIN@ACME.TEST. Before the `@` only ASCII is taken."""
    with pytest.raises(ValidationError) as refused:
        email_clean(f"{local}@acme.test")
    assert refused.value.code == "email_invalid"


def test_an_international_domain_is_still_taken():
    assert email_clean("Owner@B\u00fccher.test") == "owner@b\u00fccher.test"


def test_a_member_whose_address_reads_as_the_admins_is_not_added(acme):
    twin = f"adm{DOTLESS_I}n@acme.test"
    response = api(acme, issue(acme, role="owner")).post(
        "/api/v1/members", {"email": twin, "role": "owner"}, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "email_invalid"
    with schema_context("acme"):
        assert not User.objects.filter(email=twin).exists()


@pytest.mark.parametrize("name", ["\u200b", "\u2060\u200b", "\ufeff", "\u00ad", "\u3164", " \u200b "])
def test_a_member_name_that_shows_nothing_is_refused(acme, name):
    """A name is shown in place of the address (User.display_name: full_name or email); one of
    zero-width or blank-drawn characters alone would show the member with no name at all in the
    member list, the audit trail's actors and every `created_by`."""
    response = api(acme, issue(acme, role="owner")).post(
        "/api/v1/members",
        {"email": "ghost@acme.test", "full_name": name, "role": "admin"},
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "name_invalid"
    with schema_context("acme"):
        assert not User.objects.filter(email="ghost@acme.test").exists()


@pytest.mark.parametrize("name", ["\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "Zo\u00eb", ""])
def test_a_name_that_shows_is_taken(acme, name):
    """A zero-width non-joiner inside a Persian name is part of its spelling; no name at all is
    allowed too (the address is shown instead)."""
    response = api(acme, issue(acme, role="owner")).post(
        "/api/v1/members",
        {"email": "named@acme.test", "full_name": name, "role": "admin"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    with schema_context("acme"):
        assert User.objects.get(email="named@acme.test").full_name == name
