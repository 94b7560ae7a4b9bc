"""Erasure edge cases (docs/lifecycle.md, "Erasing one person's data")."""

from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import member_add
from apps.lifecycle.erasure import member_erase
from tests.conftest import tenant_user


def test_erasing_one_person_leaves_another_members_email_whose_address_contains_it(acme):
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        member_add(actor=owner, email="bob@acme.test", role=Role.VIEWER, full_name="")
        jim = member_add(actor=owner, email="jimbob@acme.test", role=Role.VIEWER, full_name="")
        member_erase(actor=owner, email="bob@acme.test")
        assert User.objects.get(pk=jim.pk).email == "jimbob@acme.test"
