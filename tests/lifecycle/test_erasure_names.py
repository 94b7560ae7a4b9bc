"""An erasure replaces the person's name where it names them, never another member's data: a
one-word name (an SSO name, or what an admin typed) that is also a word of another member's
email or name, or a role, leaves those as they are."""

from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import member_add
from apps.catalog.models import Version
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
