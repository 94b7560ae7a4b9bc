"""Operator console refusals and the platform's audit chain."""

from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.tenants.models import Tenant
from tests.conftest import audit_events, client_for


def test_a_signed_in_non_operator_refused_by_the_operator_console_is_an_access_denied_event(acme):
    """docs/audit.md "Refusals are events too": a signed-in principal refused by the console is
    one `access.denied` event (outcome `denied`). An operator demoted (is_staff cleared) while
    signed in on the operator host, trying to suspend a workspace, is refused with a 403 and the
    platform chain says so; `operator_required` used to record nothing, so a revoked operator's
    repeated attempts left no trace."""
    client = client_for(None, "operator@platform.test")
    with schema_context("public"):
        operator = User.objects.get(email="operator@platform.test")
        operator.is_staff = False  # their operator rights revoked; the session lives on
        operator.save(update_fields=["is_staff"])
    before = len(audit_events("public"))

    response = client.post("/tenants/acme/suspend/")

    assert response.status_code == 403
    assert Tenant.objects.get(slug="acme").status == "active"
    denied = [e for e in audit_events("public")[before:] if e.action == "access.denied"]
    assert len(denied) == 1, [e.action for e in audit_events("public")[before:]]
    assert denied[0].outcome == "denied"
    assert denied[0].actor_id == f"user:{operator.pk}"
