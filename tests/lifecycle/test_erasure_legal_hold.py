"""A workspace whose audit trail is on legal hold erases no one's personal data (docs/lifecycle.md,
"Erasing one person's data"): the erasure nulls the actor table's names and emails, which say
who each pseudonymous id in the held trail was, and deletes the workspace's exports. Refused with
`409 legal_hold`, nothing changed, until its owners lift the hold; as a deletion is."""

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.audit.models import AuditActor, AuditEvent
from apps.audit.scope import rls_scope
from apps.lifecycle.models import RetentionPolicy
from apps.tenants.models import Tenant
from tests.api.conftest import api, issue


def _hold(tenant: Tenant, held: bool) -> None:
    with schema_context(tenant.schema_name):
        RetentionPolicy.objects.update_or_create(pk=1, defaults={"audit_legal_hold": held})


def _state(tenant: Tenant, email: str) -> tuple:
    """The member, the actor table's names for them, and the erasures recorded."""
    with schema_context(tenant.schema_name):
        member = User.objects.filter(email=email).values_list("pk", flat=True).first()
    with rls_scope(tenant.pk):
        names = sorted(
            AuditActor.objects.filter(tenant_id=tenant.pk, email=email).values_list("actor_id", "display_name")
        )
        erasures = AuditEvent.objects.filter(tenant_id=tenant.pk, action="member.erased").count()
    return member, names, erasures


def test_a_held_workspace_erases_no_one_by_the_api_or_the_command(fresh_tenant, globex, db):
    tenant, email = fresh_tenant, f"viewer@{fresh_tenant.slug}.test"
    _hold(tenant, True)
    _hold(globex, False)  # another workspace's policy is not this one's
    owner = api(tenant, issue(tenant, role="owner"))  # recorded: the actor table names the owner too
    before = _state(tenant, email)
    assert before[0] is not None

    refused = owner.post("/api/v1/members/erase", {"email": email}, content_type="application/json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "legal_hold")
    assert "legal hold" in refused.json()["error"]["message"]
    with pytest.raises(CommandError, match="legal hold"):
        call_command("erase_member", tenant.slug, email)
    assert _state(tenant, email) == before

    _hold(tenant, False)  # lifted: erased as usual
    done = owner.post("/api/v1/members/erase", {"email": email}, content_type="application/json")
    assert done.status_code == 200, done.content
    member, _, erasures = _state(tenant, email)
    assert member is None and erasures == before[2] + 1
