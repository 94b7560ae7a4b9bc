"""An admin refused lifting a legal hold on the console's retention page is one `access.denied`
event, as on the API (docs/audit.md "Refusals are events too"). The page caught the service's
PermissionDenied itself and recorded nothing (apps/lifecycle/views_retention.py). Found by the
audit-events review."""

from django_tenants.utils import schema_context

from apps.lifecycle.models import RetentionPolicy
from tests.audit.watch import Watch, describe
from tests.conftest import client_for, tenant_user
from tests.lifecycle.test_retention import page_fields, put


def test_an_admin_refused_lifting_a_legal_hold_in_the_console_is_audited_as_denied(acme):
    """The API records this refusal (foundry/api/errors.py); the console page catches the
    service's PermissionDenied itself (apps/lifecycle/views_retention.py) and records nothing."""
    assert put(client_for(acme, "admin@acme.test"), {"audit_legal_hold": True}).status_code == 200
    admin = tenant_user(acme, "admin@acme.test")
    console = client_for(acme, "admin@acme.test")
    fields = page_fields(console)
    del fields["audit_legal_hold"]  # the box unticked: lifting the hold
    watch = Watch()
    page = console.post("/settings/retention/", fields)
    assert page.status_code == 403
    with schema_context("acme"):
        assert RetentionPolicy.objects.get().audit_legal_hold is True
    denied = [e for e in watch.new("acme") if e.action == "access.denied"]
    assert len(denied) == 1, f"expected one access.denied, got {describe(watch.new('acme'))}"
    assert (denied[0].actor_id, denied[0].outcome) == (f"user:{admin.pk}", "denied")
