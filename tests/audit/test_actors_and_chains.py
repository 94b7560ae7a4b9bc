"""Right actor, right chain, the request's address: operators' commands are `service:cli:<command>`
(docs/audit.md: "management commands … the same actor they give the trail"), an operator's
action is on the platform chain, a workspace's own action on its chain, and a console request's
event carries its address and request id."""

import ipaddress
import json
import zipfile
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django_tenants.utils import schema_context

from apps.audit.models import PLATFORM, AuditActor
from apps.audit.scope import rls_scope
from apps.audit.services import audit_record, platform_actor_id
from apps.providers.services import credential_set
from apps.tenants.models import Tenant
from tests.api.conftest import api, issue
from tests.audit.watch import Watch, describe
from tests.conftest import PASSWORD, audit_events, tenant_user
from tests.identity.conftest import idp, loopback_allowed  # noqa: F401 — fixtures
from tests.lifecycle.test_archive import archive_of
from tests.providers.conftest import encryption_key  # noqa: F401 — autouse: a key of the test's own
from tests.runs.conftest import (
    advance,
    triage,  # noqa: F401
)
from tests.runs.test_engine import start
from tests.runs.test_quotas import budget, spend


def test_an_operator_exporting_a_workspace_by_command_is_recorded_as_that_command(fresh_tenant, db, tmp_path):
    schemas = (fresh_tenant.schema_name, "public")
    watch = Watch(*schemas)
    call_command("export_tenant", fresh_tenant.slug, str(tmp_path / "out.zip"), stdout=StringIO())
    assert zipfile.is_zipfile(tmp_path / "out.zip")
    new = watch.all_new()
    actors = {(e.action, e.actor_id) for events in new.values() for e in events}
    assert any(actor == "service:cli:export_tenant" for _, actor in actors), actors
    assert [e for e in new["public"] if e.actor_id == "service:cli:export_tenant"], "no platform event"


def test_erasing_an_actor_by_command_is_recorded_as_that_command(acme):
    viewer = tenant_user(acme, "viewer@acme.test")
    signed_in = Client(HTTP_HOST="acme.localhost").post(
        "/login/", {"username": "viewer@acme.test", "password": PASSWORD}
    )
    assert signed_in.status_code == 302  # the trail now holds the viewer's name and email
    watch = Watch()
    call_command("audit_erase_actor", "--tenant", "acme", f"user:{viewer.pk}", stdout=StringIO())
    (event,) = [e for e in watch.new("acme") if e.action == "audit.actor.erased"]
    assert event.actor_id == "service:cli:audit_erase_actor", event.actor_id


def test_applying_retention_by_command_is_recorded_as_that_command(acme):
    watch = Watch()
    call_command("apply_retention", "--tenant", "acme", "--dry-run", stdout=StringIO())
    (event,) = [e for e in watch.new("acme") if e.action == "retention.applied"]
    assert event.actor_id == "service:cli:apply_retention", event.actor_id


def test_rotating_encryption_keys_is_recorded(acme, settings):
    old = settings.FOUNDRY_ENCRYPTION_KEYS[0]
    with schema_context("acme"):
        credential_set(
            actor=tenant_user(acme, "owner@acme.test"), provider="openai", api_key="sk-test-0123456789abcdef"
        )
    settings.FOUNDRY_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old]
    watch = Watch()
    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    new = watch.all_new()
    # Every tenant's provider credentials (and SSO / sink secrets) were re-encrypted: not one event.
    assert any(e.actor_id == "service:cli:rotate_encryption_keys" for events in new.values() for e in events), (
        out.getvalue(),
        {schema: describe(events) for schema, events in new.items()},
    )


def test_rotating_a_sinks_secret_is_recorded_in_its_history_as_the_command(acme, settings):
    """An audit sink's model history (kept in `public`) names the command that re-encrypted its
    secret, as the provider credentials' does."""
    from auditlog.models import LogEntry

    from apps.audit.delivery import SinkFields, audit_sink_set
    from apps.audit.models import AuditSink
    from apps.audit.scope import rls_scope

    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    fields = SinkFields(kind="webhook", url="https://127.0.0.1:9/in", secret="s3cret-s3cret-s3cret")
    audit_sink_set(tenant=acme, name="hook", fields=fields, actor="test")
    with rls_scope(acme.pk):
        sink = AuditSink.objects.get(tenant_id=acme.pk, name="hook")
    settings.FOUNDRY_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), settings.FOUNDRY_ENCRYPTION_KEYS[0]]
    before = set(LogEntry.objects.values_list("pk", flat=True))
    call_command("rotate_encryption_keys", stdout=StringIO())
    entries = LogEntry.objects.exclude(pk__in=before).filter(object_pk=str(sink.pk), content_type__model="auditsink")
    assert [e.additional_data.get("actor") for e in entries] == ["service:cli:rotate_encryption_keys"]


def test_an_import_in_the_operator_console_carries_the_request(acme, operator_client):
    data, _ = archive_of(acme)
    archive = SimpleUploadedFile("acme.zip", data, content_type="application/zip")
    response = operator_client.post("/tenants/import/", {"archive": archive, "slug": "acme-imported", "name": ""})
    assert response.status_code == 302
    tenant = Tenant.objects.get(slug="acme-imported")
    (event,) = audit_events("public", action="tenant.imported", target_id=str(tenant.pk))
    assert event.actor_id.startswith("operator:")
    # Every other operator-console action (provision, suspend, limits, plans, prices, deletion)
    # passes its request: the address and request id of the event.
    assert (event.ip, event.request_id) == ("127.0.0.1", response["X-Request-ID"])


def test_a_run_stopped_by_a_spent_budget_is_audited(acme, triage):  # noqa: F811
    budget(acme, monthly_tokens=1000)
    spend(acme, 1000)
    run = start(acme, triage, "Triage invoice INV-1001.")
    watch = Watch()
    run = advance(run, "acme")
    assert (run.status, run.reason) == ("failed", "quota_exceeded"), run.message
    new = watch.new("acme")
    stops = [e for e in new if e.target_type == "runs.run" and e.target_id == str(run.pk)]
    # A quota refusal stops the run (a denied model call): one event, outcome denied or failure.
    assert len(stops) == 1 and stops[0].outcome in ("denied", "failure"), describe(new)


def test_a_run_stopped_by_a_spent_budget_and_its_event_commit_together(acme, triage, monkeypatch):  # noqa: F811
    """The run's end and its `quota.exceeded` event are one transaction: a fault between the two
    leaves neither (the run goes back to the queue and its retry ends it, recorded once), never a
    run failed `quota_exceeded` with no event."""
    from django.db import OperationalError

    from apps.runs import engine
    from apps.runs.engine import run_advance
    from apps.runs.models import Run

    budget(acme, monthly_tokens=1000)
    spend(acme, 1000)
    run = start(acme, triage, "Triage invoice INV-1001.")
    record, failed = engine.audit_record, []

    def fails_once(**kwargs):
        if kwargs.get("action") == "quota.exceeded" and not failed:
            failed.append(True)
            raise OperationalError("the database went away")
        return record(**kwargs)

    monkeypatch.setattr(engine, "audit_record", fails_once)
    with schema_context("acme"), pytest.raises(OperationalError):
        run_advance(run.pk)
    with schema_context("acme"):
        assert Run.objects.get(pk=run.pk).status == Run.Status.QUEUED
    assert not audit_events("acme", action="quota.exceeded", target_id=str(run.pk))
    run = advance(run, "acme")
    assert (run.status, run.reason) == ("failed", "quota_exceeded")
    assert len(audit_events("acme", action="quota.exceeded", target_id=str(run.pk))) == 1


def test_an_owner_asking_for_the_workspaces_deletion_is_in_the_workspaces_own_chain(acme):
    owner = issue(acme, role="owner")
    watch = Watch()
    response = api(acme, owner).post(
        "/api/v1/workspace/deletion", json.dumps({"confirm": "acme"}), content_type="application/json"
    )
    assert response.status_code == 202, response.content
    new = watch.all_new()
    assert [e.action for e in new["public"]] == ["tenant.deletion_scheduled"]
    # The workspace's owners and admins read their own chain only: it says so there too.
    assert [e.action for e in new["acme"]] == ["tenant.deletion_scheduled"], describe(new["acme"])


def test_a_trace_content_change_is_model_history(acme):
    from auditlog.models import LogEntry

    admin = issue(acme)
    response = api(acme, admin).patch(
        "/api/v1/workspace", json.dumps({"trace_content": True}), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert [e.action for e in audit_events("acme", action="workspace.trace_content")] == ["workspace.trace_content"]
    with schema_context("public"):
        entries = [
            e
            for e in LogEntry.objects.get_for_object(Tenant.objects.get(pk=acme.pk))
            if "trace_content" in (e.changes or {})
        ]
    assert len(entries) == 1


def test_erasing_a_member_by_command_also_erases_their_row_on_the_platform_chain(acme):
    """A member who scheduled or cancelled their workspace's deletion is named on the platform's
    chain too, as `user:N@tenant:ID` (docs/audit.md): `audit_erase_actor --tenant` erases both."""
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        # What tenant_deletion_schedule/cancel do for a workspace owner: both chains.
        for chain in (acme.pk, PLATFORM):
            audit_record(action="tenant.deletion_scheduled", actor=owner, target=acme, chain=chain)
    platform_id = platform_actor_id(acme.pk, f"user:{owner.pk}")
    with rls_scope(PLATFORM):
        assert AuditActor.objects.get(tenant_id=PLATFORM, actor_id=platform_id).email == "owner@acme.test"

    call_command("audit_erase_actor", "--tenant", "acme", f"user:{owner.pk}", stdout=StringIO())

    with rls_scope(acme.pk):
        assert AuditActor.objects.get(tenant_id=acme.pk, actor_id=f"user:{owner.pk}").email is None
    with rls_scope(PLATFORM):
        row = AuditActor.objects.get(tenant_id=PLATFORM, actor_id=platform_id)
    assert (row.email, row.display_name, row.erased_at is not None) == (None, None, True), (
        f"the erased member is still named on the platform's chain: {row.display_name!r} <{row.email}>"
    )
