"""Workspace members on the platform's chain (0) are named with their workspace
(`user:1@tenant:7`): ids restart in every workspace's schema, and the platform's actor table
keeps one name and email per id."""

import json

import pytest

from tests.conftest import audit_events, client_for, tenant_user


def _schedule_deletion(tenant, email: str):
    # The owner asks for the workspace's deletion over the API, signed in (session), as documented:
    # POST /api/v1/workspace/deletion (owners; recorded on the workspace's chain and the platform's).
    client = client_for(tenant, email)
    response = client.post(
        "/api/v1/workspace/deletion", json.dumps({"confirm": tenant.slug}), content_type="application/json"
    )
    assert response.status_code == 202, response.content
    return response


@pytest.mark.django_db
def test_platform_console_names_the_owner_who_asked_for_the_deletion(acme, globex, operator_client):
    acme_owner = tenant_user(acme, "owner@acme.test")
    globex_owner = tenant_user(globex, "owner@globex.test")
    assert acme_owner.pk == globex_owner.pk  # per-schema ids: both are user:1

    _schedule_deletion(acme, "owner@acme.test")
    (acme_event,) = audit_events("public", action="tenant.deletion_scheduled", target_id=str(acme.pk))
    assert acme_event.actor_id == f"user:{acme_owner.pk}@tenant:{acme.pk}"  # which workspace's user:1

    _schedule_deletion(globex, "owner@globex.test")

    page = operator_client.get(f"/audit/events/{acme_event.seq}/")
    assert page.status_code == 200
    actor_cell = page.content.decode().split('data-testid="actor"', 1)[1].split("</td>", 1)[0]
    # The event was acme's owner's; the platform console must not name globex's owner for it.
    assert "owner@globex.test" not in actor_cell, actor_cell


@pytest.mark.django_db
def test_erasing_a_member_erases_their_email_from_the_platform_chains_actor_table(acme):
    """docs/lifecycle.md: erasure sets the name and email of the actor table's row to null — the
    platform chain's row too, for a member who acted on it (a deletion they asked for)."""
    from django.core.management import call_command
    from django_tenants.utils import schema_context

    from apps.accounts.models import User
    from apps.accounts.permissions import Role
    from apps.audit.models import PLATFORM, AuditActor
    from apps.audit.scope import rls_scope
    from apps.lifecycle.deletion import tenant_deletion_cancel
    from tests.conftest import PASSWORD

    with schema_context(acme.schema_name):
        second = User.objects.create_user("second-owner@acme.test", PASSWORD, role=Role.OWNER)
    _schedule_deletion(acme, "second-owner@acme.test")
    acme.refresh_from_db()
    tenant_deletion_cancel(tenant=acme, actor="test")

    call_command("erase_member", "acme", "second-owner@acme.test")

    with schema_context("public"), rls_scope(PLATFORM):
        left = list(
            AuditActor.objects.filter(tenant_id=PLATFORM, email__iexact="second-owner@acme.test").values_list(
                "actor_id", flat=True
            )
        )
    assert left == [], f"the platform chain still names {left} as second-owner@acme.test (user:{second.pk})"
