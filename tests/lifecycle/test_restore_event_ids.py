"""A SIEM drops repeats by event id (docs/audit-siem.md, "Delivery guarantees"), so an id must
name one event only. A restore brings a workspace's chain (and its sinks' cursors) back to the
backup: the events appended after it take the sequence numbers of events appended, and perhaps
delivered, before — another event under the same number. Its id must differ, or the receiver
drops it as a repeat; the same event keeps its id whenever it is sent again."""

import io

from django.core.management import call_command
from django.db import connection, transaction

from apps.audit.delivery import syslog_frame
from apps.audit.export import event_record
from apps.audit.models import AuditEvent
from apps.lifecycle.backup import backup_list, tenant_scope
from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge
from apps.tenants.models import Tenant
from tests.lifecycle.test_backup import (
    unblocked,  # noqa: F401 — fixture
    workspace,  # noqa: F401 — fixture
)


def _event(tenant_id: int, seq: int) -> AuditEvent:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('foundry.tenant_id', %s, true)", [str(tenant_id)])
        return AuditEvent.objects.get(tenant_id=tenant_id, seq=seq)


def _ids(event: AuditEvent) -> tuple[str, str, bytes]:
    """The event's id as a jsonl line, an OCSF record and a syslog frame carry it."""
    frame = syslog_frame(event, "jsonl", "host.test")
    sd_id = frame.split(b' id="', 1)[1].split(b'"', 1)[0]
    return event_record(event, "jsonl")["id"], event_record(event, "ocsf")["metadata"]["uid"], sd_id


def test_an_event_appended_after_a_restore_does_not_reuse_the_id_of_the_event_it_replaced(workspace, tmp_path):  # noqa: F811
    from apps.audit.services import audit_record

    call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(workspace))
    before = audit_record(action="thing.before_purge", actor="test", chain=workspace.pk)
    sent = _ids(_event(workspace.pk, before.seq))  # say, delivered to the SIEM
    assert sent[0] == sent[1] == sent[2].decode()

    tenant_deletion_schedule(tenant=workspace, actor="test", grace_days=0)
    tenant_purge(tenant=Tenant.objects.get(pk=workspace.pk), actor="test")
    call_command("restore", str(made), tenant=workspace.slug, stdout=io.StringIO())
    after = audit_record(action="thing.after_restore", actor="test", chain=workspace.pk)
    assert after.seq == before.seq  # the restored chain goes on from the backup's head

    again = _ids(_event(workspace.pk, after.seq))
    assert again[0] == again[1] == again[2].decode()
    assert again[0] != sent[0], "the new event carries the id of the one delivered before the purge"
    assert _ids(_event(workspace.pk, after.seq)) == again  # stable: a resend is still a repeat
