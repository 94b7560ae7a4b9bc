"""docs/lifecycle.md ("Erasing one person's data"): the person's name is replaced in "an API token
named after them (also its row in the audit actor table)", and docs/audit.md: "A member is erased
from the platform's chain too (where their workspace's deletion, asked for by them, names them)".
An owner who asks for the workspace's deletion with an API token puts that token's row — holding
the token's name — in the platform chain's actor table (`token:<prefix>@tenant:<id>`)."""

import json

from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import member_add
from apps.audit.models import PLATFORM, AuditActor
from apps.audit.scope import rls_scope
from apps.lifecycle.deletion import tenant_deletion_cancel
from apps.lifecycle.erasure import member_erase
from apps.tenants.models import Tenant
from apps.tokens.services import token_issue
from tests.api.conftest import api
from tests.conftest import tenant_user

EMAIL = "pat.quinlan@acme.test"
NAME = "Patricia Quinlan"


def test_erasure_reaches_the_platform_chains_actor_row_of_a_token_named_after_the_person(acme):
    """Pat (an owner) asks for the workspace's deletion with the token "Patricia Quinlan laptop";
    an operator cancels it; another owner erases Pat. No row of the actor table — the platform
    chain's included, which operators read beside the platform's events — may still hold Pat's
    name: the workspace's own chain has it replaced, the platform chain's row must be too (or
    erased, as the `user:N@tenant:T` row is)."""
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        pat = member_add(actor=owner, email=EMAIL, role=Role.OWNER, full_name=NAME)
        token = token_issue(actor=pat, name=f"{NAME} laptop", role="owner", scopes=["read", "admin"])
    asked = api(acme, token.plaintext).post(
        "/api/v1/workspace/deletion", json.dumps({"confirm": acme.slug}), content_type="application/json"
    )
    assert asked.status_code == 202, asked.content
    with schema_context("public"):
        operator = User.objects.get(email="operator@platform.test")
        tenant_deletion_cancel(tenant=Tenant.objects.get(pk=acme.pk), actor=operator)

    with schema_context(acme.schema_name):
        member_erase(actor=owner, email=EMAIL)

    with rls_scope(PLATFORM):
        left = list(
            AuditActor.objects.filter(tenant_id=PLATFORM, actor_id__endswith=f"@tenant:{acme.pk}")
            .filter(display_name__icontains="Quinlan")
            .values_list("actor_id", "display_name")
        )
    assert left == [], f"the platform chain's actor table still names the erased member: {left}"
