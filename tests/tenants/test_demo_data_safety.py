"""`manage.py demo_data` makes accounts whose password the README prints, and the compose stack runs
it on every `up`, its production-like run (FOUNDRY_DEBUG=0) included: it makes them only with
DEBUG on (or --force), never in a workspace it did not make, and records the operator it makes."""

from django.core.management import call_command
from django_tenants.utils import schema_context

from apps.accounts.models import User
from tests.conftest import audit_events

DEMO_PASSWORD = "foundry-demo-password"  # README: the documented demo password


def test_with_debug_off_demo_data_makes_nothing(db, settings, capsys):
    settings.DEBUG = False
    call_command("demo_data")
    assert "FOUNDRY_DEBUG is off: no demo data" in capsys.readouterr().out
    with schema_context("public"):
        assert not User.objects.filter(email="operator@foundry.example").exists()


def test_demo_data_adds_no_known_password_members_to_a_workspace_it_did_not_make(acme):
    """`acme` here is owned by owner@acme.test, not the demo's owner: no member with the published
    password is added to it, nothing is published in its owner's name."""
    call_command("demo_data", "--force")
    with schema_context("acme"):
        added = [
            u.email for u in User.objects.filter(email__endswith="@acme.example") if u.check_password(DEMO_PASSWORD)
        ]
        assert added == [], f"demo_data added known-password members to an existing workspace: {added}"
    assert not audit_events("acme", action="dis.publish") and not audit_events("acme", action="agent.deploy")


def test_the_operator_demo_data_makes_is_recorded(db):
    call_command("demo_data", "--force")
    with schema_context("public"):
        operator = User.objects.get(email="operator@foundry.example")
    assert audit_events("public", action="operator.created", target_id=str(operator.pk))
