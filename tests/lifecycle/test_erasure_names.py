"""An erasure replaces the person's name where it names them, never another member's data: a
one-word name (an SSO name, or what an admin typed) that is also a word of another member's
email or name, or a role, or a document's name, leaves those as they are; a name is found in the
model history's JSON as it spells it (a quote or a backslash escaped)."""

import json

import pytest
from auditlog.models import LogEntry
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import member_add
from apps.catalog.models import Document, Version
from apps.catalog.services import version_publish
from apps.lifecycle.erasure import member_erase
from tests.conftest import tenant_user
from tests.runs.conftest import FINANCE


def test_erasing_a_member_named_sam_leaves_another_members_email_alone(acme):
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        member_add(actor=owner, email="sam.jones@acme.test", role=Role.DEVELOPER, full_name="Sam Jones")
        member_add(actor=owner, email="s.k@acme.test", role=Role.VIEWER, full_name="Sam")

        member_erase(actor="cli:erase_member", email="s.k@acme.test")

        kept = User.objects.filter(email="sam.jones@acme.test").values_list("full_name", flat=True).first()
    assert kept == "Sam Jones"  # Sam Jones, not erased, still signs in with their own address


def test_an_admin_erasing_a_member_named_owner_leaves_the_owners_role_and_email_alone(acme):
    """An admin may not remove or demote an owner (docs/roles.md); adding a viewer named "Owner"
    and erasing them must not do it either."""
    owner = tenant_user(acme, "owner@acme.test")
    admin = tenant_user(acme, "admin@acme.test")
    with schema_context(acme.schema_name):
        member_add(actor=admin, email="someone@acme.test", role=Role.VIEWER, full_name="Owner")

        member_erase(actor=admin, email="someone@acme.test")

        owner.refresh_from_db()
        assert (owner.role, owner.email) == (Role.OWNER, "owner@acme.test")


def test_a_one_word_name_is_replaced_where_it_is_the_whole_author_and_kept_in_another_members(acme):
    """ "Sam" authored one version, "Sam Jones" the next: only Sam's authorship is pseudonymised."""
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        sam = member_add(actor=owner, email="s.k@acme.test", role=Role.DEVELOPER, full_name="Sam")
        jones = member_add(actor=owner, email="sam.jones@acme.test", role=Role.DEVELOPER, full_name="Sam Jones")
        version_publish(actor=sam, source=FINANCE)
        version_publish(actor=jones, source=FINANCE.replace("Invoices", "Invoices we pay"))

        member_erase(actor="cli:erase_member", email="s.k@acme.test")

        authors = list(Version.objects.order_by("number").values_list("author_name", "author_email"))
    erased = f"user-{sam.pk}"
    assert authors == [(f"Erased {erased}", f"erased-{erased}@erased.invalid"), ("Sam Jones", "sam.jones@acme.test")]


def test_a_one_word_name_is_no_document_s_name(acme):
    """A shared mailbox member "Finance" is erased: a one-word name is replaced where it is the
    whole value of an attribution (an author, a creator, an approver), so the domain `finance`, its
    history and the agents pinning it keep their name; it was rewritten in every short text column
    whose whole value it was ("Erased user-N": the catalog's name, agents' and models' names)."""
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        version_publish(actor=owner, source=FINANCE)
        member = member_add(actor=owner, email="finance-team@acme.test", role=Role.VIEWER, full_name="Finance")
        erased = member_erase(actor="cli:erase_member", email="finance-team@acme.test")
        assert list(Document.objects.values_list("name", flat=True)) == ["finance"]
        histories = [json.dumps(e.changes) for e in LogEntry.objects.filter(content_type__model="document")]
        assert histories and all("Erased" not in changes for changes in histories)
        # Their own member row's history: the name replaced as the value of full_name.
        own = LogEntry.objects.filter(content_type__model="user", object_pk=str(member.pk))
        assert own and all('"Finance"' not in json.dumps(e.changes) for e in own)
        assert any(erased.pseudonym in json.dumps(e.changes) for e in own)


@pytest.mark.parametrize(("name", "part"), [('Pat "PJ" Example', "PJ"), ("Back\\slash Name", "slash")])
def test_a_name_with_a_quote_or_backslash_is_replaced_in_the_model_history(acme, name, part):
    """The history's changes are JSON, which writes a quote or a backslash escaped: the name is
    found in that spelling too (it stayed in the entries of the member's row, the email beside it
    replaced)."""
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        member_add(actor=owner, email="pat@acme.test", role=Role.VIEWER, full_name=name)
        member_erase(actor="cli:erase_member", email="pat@acme.test")
        left = [changes for e in LogEntry.objects.all() if part in (changes := json.dumps(e.changes))]
    assert left == []
