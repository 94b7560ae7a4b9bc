"""What `audit_erase_actor` reaches (docs/audit.md, "Erasing personal data"): every chain that
names the actor, clean refusals of ids no actor has, and `erase_member` still possible after it."""

from io import StringIO

import pytest
from auditlog.models import LogEntry
from django.core.management import CommandError, call_command
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.services import member_remove
from apps.audit.models import PLATFORM, AuditActor
from apps.audit.scope import rls_scope
from apps.tenants.services import tenant_provision
from tests.api.conftest import api, issue
from tests.conftest import PASSWORD, tenant_user


def test_erasing_an_operator_erases_their_email_on_the_workspaces_they_provisioned(db):
    """An operator who provisions a workspace is named on the new workspace's own chain
    (`tenant.provisioned`), with their name and email in the actor table under that chain:
    `audit_erase_actor --platform operator:N` erases them there too, not only on the platform's
    chain, so the workspace's owners no longer read the operator's email."""
    with schema_context("public"):
        operator = User.objects.get(email="operator@platform.test")
    tenant = tenant_provision(
        slug="rvprov", name="Rv Prov", owner_email="owner@rvprov.test", owner_password=PASSWORD, actor=operator
    ).tenant

    call_command("audit_erase_actor", "--platform", f"operator:{operator.pk}", stdout=StringIO())

    with rls_scope(PLATFORM):  # the platform's own row is erased...
        assert AuditActor.objects.get(tenant_id=PLATFORM, actor_id=f"operator:{operator.pk}").erased_at is not None
    response = api(tenant, issue(tenant, role="owner")).get(
        "/api/v1/audit/events", {"filter": 'action = "tenant.provisioned"'}
    )
    assert response.status_code == 200, response.content
    actors = [event["actor"] for event in response.json()["events"]]
    assert actors and all(a["email"] is None and a["name"] is None for a in actors), (
        "the erased operator is still named in the workspace's trail",
        actors,
    )


@pytest.mark.parametrize("actor_id", ["user:1\x00", "user:\udcff"], ids=["nul", "lone-surrogate"])
def test_an_actor_id_no_query_can_carry_is_a_clean_command_error(acme, actor_id):
    """An actor id with a NUL, or a stray byte of a shell that is not UTF-8 (a lone surrogate), is
    refused with a CommandError, as the --tenant option refuses such text: no traceback."""
    with pytest.raises(CommandError):
        call_command("audit_erase_actor", "--tenant", "acme", actor_id, stdout=StringIO())


def test_a_former_member_erased_from_the_actor_table_can_still_be_erased_from_the_workspace(acme):
    """`audit_erase_actor` for a removed member, then `erase_member` for the rest of their data:
    the actor table no longer holds their email, but the model history (named by it) still knows
    the former member, so the erasure goes ahead and the history no longer holds the address."""
    viewer = tenant_user(acme, "viewer@acme.test")
    owner = tenant_user(acme, "owner@acme.test")
    signed_in = Client(HTTP_HOST="acme.localhost").post(
        "/login/", {"username": "viewer@acme.test", "password": PASSWORD}
    )
    assert signed_in.status_code == 302  # the actor table now holds the viewer's email
    with schema_context(acme.schema_name):
        member_remove(actor=owner, member=viewer)
    call_command("audit_erase_actor", "--tenant", "acme", f"user:{viewer.pk}", stdout=StringIO())
    with schema_context(acme.schema_name):
        assert LogEntry.objects.filter(object_repr__icontains="viewer@acme.test").exists()

    call_command("erase_member", "acme", "viewer@acme.test", stdout=StringIO())

    with schema_context(acme.schema_name):
        assert not LogEntry.objects.filter(object_repr__icontains="viewer@acme.test").exists()


def test_an_erasure_whose_event_cannot_be_recorded_erases_nothing(acme, monkeypatch):
    """The actor's erasure and its `audit.actor.erased` event commit together: when the event
    cannot be appended, the name and email stay, for the erasure to be asked again."""
    from apps.audit import services

    viewer = tenant_user(acme, "viewer@acme.test")
    signed_in = Client(HTTP_HOST="acme.localhost").post(
        "/login/", {"username": "viewer@acme.test", "password": PASSWORD}
    )
    assert signed_in.status_code == 302  # the actor table now holds the viewer's email

    def fails(**kwargs):
        raise RuntimeError("the chain could not take the event")

    monkeypatch.setattr(services, "audit_record", fails)
    with pytest.raises(RuntimeError):
        services.audit_actor_erase(tenant_id=acme.pk, actor_id=f"user:{viewer.pk}", actor="cli:audit_erase_actor")
    with rls_scope(acme.pk):
        actor = AuditActor.objects.get(tenant_id=acme.pk, actor_id=f"user:{viewer.pk}")
    assert (actor.email, actor.erased_at) == ("viewer@acme.test", None)
