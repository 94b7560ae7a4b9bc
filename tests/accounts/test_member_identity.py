"""Who a member is, whatever credential acts or spelling names them: an API token is the member who
issued it, and an address that normalises (NFKC) to another is not another member."""

import importlib
import unicodedata

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import ValidationError
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.services import email_clean, member_add
from apps.tokens.services import token_issue
from tests.api.conftest import api, issue
from tests.conftest import PASSWORD, client_for, tenant_user


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


@pytest.mark.parametrize("quoted", ['"owner"@acme.test', '"own er"@acme.test', 'a."owner"@acme.test'])
def test_a_quoted_local_part_is_refused_not_a_twin_of_the_owner(quoted):
    """`"owner"@acme.test` is owner@acme.test's mailbox (RFC 5321 §4.1.2): an identity provider
    asserting it made a new member reading as the owner in the member list and the trail."""
    with pytest.raises(ValidationError) as refused:
        email_clean(quoted)
    assert refused.value.code == "email_invalid"


def test_an_idn_domain_in_decomposed_form_is_accepted_as_its_composed_form():
    """An internationalised domain whose accents arrive decomposed (NFD, as macOS input or an IdP
    may send them) is the same address as its composed form (IDNA maps both alike): accepted, and
    stored composed, so the two spellings are one member."""
    composed = "owner@bücher.de"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert email_clean(composed) == composed
    assert email_clean(decomposed) == composed


INVISIBLE = {
    "soft_hyphen": "\u00ad",
    "zero_width_space": "\u200b",
    "zero_width_joiner": "\u200d",
    "zero_width_non_joiner": "\u200c",
    "combining_grapheme_joiner": "\u034f",
    "variation_selector_16": "\ufe0f",
}


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_an_invisible_character_in_the_domain_does_not_make_a_twin_of_the_owner(acme, char):
    """IDNA maps it to nothing (or refuses it): the address is the owner's mailbox, and reads as
    the owner's in the console and the audit trail. Refused, not an admin next to the owner."""
    twin = f"owner@ac{char}me.test"
    with schema_context("acme"):
        owner = User.objects.get(email="owner@acme.test")
        with pytest.raises(ValidationError) as refused:
            member_add(actor=owner, email=twin, role="admin")
        assert not User.objects.filter(email=twin).exists()
    assert "email_invalid" in {error.code for errors in refused.value.error_dict.values() for error in errors}
    added = api(acme, issue(acme, role="owner")).post(
        "/api/v1/members", {"email": twin, "role": "admin"}, content_type="application/json"
    )
    assert (added.status_code, added.json()["error"]["code"]) == (400, "email_invalid")


def test_an_idn_domain_and_its_punycode_spelling_are_one_member(acme):
    """The A-label and the U-label of a domain name the same mailbox: kept as the U-label, so the
    two spellings are one member, who signs in with either."""
    assert email_clean("a@xn--bcher-kva.test") == email_clean("a@BÜCHER.test") == "a@bücher.test"
    assert email_clean("a@straße.de") == "a@straße.de"  # IDNA 2008: not strasse.de
    with schema_context("acme"):
        owner = User.objects.get(email="owner@acme.test")
        member_add(actor=owner, email="a@bücher.test", role="viewer")
        with pytest.raises(ValidationError) as refused:
            member_add(actor=owner, email="a@xn--bcher-kva.test", role="viewer")
        User.objects.filter(email="a@bücher.test").update(password=owner.password)
    assert "member_exists" in {error.code for errors in refused.value.error_dict.values() for error in errors}
    for typed in ("a@xn--bcher-kva.test", "a@bücher.test"):
        signed_in = Client(HTTP_HOST="acme.localhost").post("/login/", {"username": typed, "password": PASSWORD})
        assert signed_in.status_code == 302, typed


def test_the_migration_writes_stored_a_label_domains_as_u_labels(acme):
    """accounts 0003: an address stored with an A-label before is the member who now signs in as
    the U-label; one whose other spelling a member has already is left as it is."""
    forwards = importlib.import_module("apps.accounts.migrations.0003_email_domain_spelling").forwards
    with schema_context("acme"):
        owner = User.objects.get(email="owner@acme.test")
        for email in ("a@bücher.test", "b@bücher.test", "c@bücher.test"):
            member_add(actor=owner, email=email, role="viewer")
        User.objects.filter(email="a@bücher.test").update(email="a@xn--bcher-kva.test")
        User.objects.filter(email="b@bücher.test").update(email="b@xn--bcher-kva.test")
        User.objects.filter(email="c@bücher.test").update(email="b@bücher.test")  # b's other spelling, taken
        forwards(django_apps, None)
        emails = set(User.objects.filter(email__contains="@").values_list("email", flat=True))
    assert {"a@bücher.test", "b@xn--bcher-kva.test", "b@bücher.test"} <= emails
    assert "a@xn--bcher-kva.test" not in emails


@pytest.mark.parametrize("name", ["Eve \u202eNWO", "a\u2066b\u2069", "bell\x07", "two\nlines", "esc\x1b[31m", "c\x85d"])
def test_a_name_holding_a_control_or_text_direction_character_is_refused(acme, name):
    """A name reads as written wherever it is shown (members list, audit actors, created_by)."""
    response = api(acme, issue(acme, role="owner")).post(
        "/api/v1/members",
        {"email": "new@acme.test", "full_name": name, "role": "viewer"},
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in ("name_invalid", "json_text_invalid")
    with schema_context("acme"):
        assert not User.objects.filter(email="new@acme.test").exists()


def test_names_in_any_script_are_kept(acme):
    with schema_context("acme"):
        owner = User.objects.get(email="owner@acme.test")
        for number, name in enumerate(["José Núñez", "Анна Петрова", "\u0645\u06cc\u200c\u0646\u0627", "李小龍"]):
            assert (
                member_add(actor=owner, email=f"n{number}@acme.test", role="viewer", full_name=name).full_name == name
            )
