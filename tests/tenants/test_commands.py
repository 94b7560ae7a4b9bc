import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context, schema_exists

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.catalog.models import Document, Kind
from apps.catalog.services import agent_deploy, version_publish
from apps.tenants.models import Tenant
from tests.conftest import audit_events


def test_create_tenant_prints_an_invitation_when_no_password_is_given(db, capsys):
    call_command("create_tenant", "initech", "--name", "Initech", "--owner-email", "bill@initech.test")
    out = capsys.readouterr().out
    assert "Created tenant initech at initech.localhost" in out
    assert "Owner invitation link: http://initech.localhost:8000/invite/" in out
    assert schema_exists("initech")


def test_create_tenant_refuses_bad_input_with_a_message(db):
    with pytest.raises(CommandError, match=r"slug: .*reserved"):
        call_command("create_tenant", "www", "--name", "W", "--owner-email", "a@w.test")
    with pytest.raises(CommandError, match="owner_email: Enter a valid email address"):
        call_command("create_tenant", "okay", "--name", "W", "--owner-email", "nope")
    assert not Tenant.objects.filter(slug__in=["www", "okay"]).exists()


def test_suspend_resume_and_list(acme, capsys):
    call_command("suspend_tenant", "acme")
    assert Tenant.objects.get(slug="acme").status == "suspended"
    call_command("list_tenants")
    out = capsys.readouterr().out
    assert "acme" in out and "suspended" in out and "globex" in out
    call_command("resume_tenant", "acme")
    assert Tenant.objects.get(slug="acme").status == "active"
    with pytest.raises(CommandError, match="No tenant with slug 'nope'"):
        call_command("suspend_tenant", "nope")


def test_list_tenants_as_json(acme, capsys):
    call_command("list_tenants", "--json")
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [json.loads(line) for line in lines]
    acme = next(r for r in rows if r["slug"] == "acme")
    assert (acme["status"], acme["plan"], acme["domains"]) == ("active", "enterprise", ["acme.localhost"])
    assert "globex" in {r["slug"] for r in rows}


def test_create_operator(db, capsys):
    call_command("create_operator", "Ops@Platform.test", "--password", "a-long-operator-password")
    with schema_context("public"):
        assert User.objects.get(email="ops@platform.test").is_staff
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_operator", "ops@platform.test", "--password", "a-long-operator-password")
    with pytest.raises(CommandError, match="too short"):
        call_command("create_operator", "x@platform.test", "--password", "short")


def test_demo_data_is_idempotent(db, capsys, demo_owns_the_fixtures):
    call_command("demo_data", "--force")
    call_command("demo_data", "--force")
    out = capsys.readouterr().out
    assert "http://acme.localhost:8000/login/" in out
    with schema_context("acme"):
        assert User.objects.filter(email="developer@acme.example").count() == 1


def test_demo_data_run_again_leaves_what_developers_published_and_deployed_alone(db, demo_owns_the_fixtures):
    """`bin/dev up` runs demo_data on every start: it publishes and deploys only the documents a
    workspace does not have, so a developer's own version stays live, and no event is recorded
    in the owner's name for a publish or deploy they did not make."""
    call_command("demo_data", "--force")
    with schema_context("acme"):
        owner = User.objects.filter(role=Role.OWNER).order_by("pk").first()
        example = Path(settings.BASE_DIR) / "examples" / "agents" / "invoice-triage.yaml"
        changed = example.read_text().replace(
            "You triage vendor invoices.", "You triage vendor invoices for the Lyon office."
        )
        published = version_publish(actor=owner, source=changed, message="our own", file="agents/invoice-triage.yaml")
        assert published.created
        mine = agent_deploy(actor=owner, document=published.version.document, number=published.version.number)
        events_before = len(audit_events("acme"))

    call_command("demo_data", "--force")  # the next `bin/dev up`

    with schema_context("acme"):
        document = Document.objects.get(kind=Kind.AGENT, name="invoice-triage")
        facts = {
            "versions": document.versions.count(),
            "live is the developer's deployment": document.live_id == mine.pk,
            "live version": document.live.version.number,
        }
    facts["new audit events"] = [(e.action, e.actor_id) for e in audit_events("acme")[events_before:]]
    assert facts == {
        "versions": 2,
        "live is the developer's deployment": True,
        "live version": 2,
        "new audit events": [],
    }


def test_resuming_a_workspace_that_is_active_sends_nothing_to_workers(acme, django_capture_on_commit_callbacks):
    """A resume of an active workspace changes nothing, records nothing, and does not hand its
    queued runs (some waiting for a concurrency slot) and exports to workers again."""
    from apps.tenants.services import tenant_resume

    with django_capture_on_commit_callbacks() as callbacks:
        tenant_resume(tenant=acme)
    assert callbacks == []
