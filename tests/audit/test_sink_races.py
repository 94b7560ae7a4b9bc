"""Audit sinks under races and crashes: the console's Add never replaces a sink another admin
created at the same moment, nor does a sink's page re-create one deleted meanwhile (each decided
under the workspace's sink lock); and a chain whose (unlogged) head row was lost is still due
for delivery while its events wait."""

from django.db import connection

from apps.audit import views_sinks
from apps.audit.delivery import SinkFields, audit_sink_get, audit_sink_list, audit_sink_set, sinks_due
from apps.audit.export import chain_head
from apps.audit.services import audit_record
from tests.conftest import audit_events, tenant_user


def test_two_admins_adding_a_sink_of_the_same_name_at_once_never_overwrite_each_other(acme, owner_client, monkeypatch):
    """The other admin's Add of the same name commits between the form's checks and its save:
    the second Add is refused (400, the name taken) and the first sink stays as saved."""
    admin = tenant_user(acme, "admin@acme.test")
    real_set = views_sinks.audit_sink_set
    raced = []

    def other_admin_adds_first(**kwargs):
        raced.append(True)  # the form found no sink called "siem"; the other admin's Add commits now
        fields = SinkFields(kind="syslog", host="admin-siem.example.com", port=6514)
        real_set(tenant=acme, name="siem", fields=fields, actor=admin)
        return real_set(**kwargs)

    monkeypatch.setattr(views_sinks, "audit_sink_set", other_admin_adds_first)
    form = {"name": "siem", "kind": "syslog", "format": "jsonl", "enabled": "on", "host": "owner-siem.example.com"}
    response = owner_client.post("/settings/audit-sinks/", form)

    assert raced
    sink = audit_sink_get(acme.pk, "siem")
    created = [e.data["created"] for e in audit_events(acme.schema_name, action="audit.sink.set")]
    assert (sink.host, sink.created_by) == ("admin-siem.example.com", str(admin)), (
        f"the other admin's sink was silently replaced (response {response.status_code}, "
        f"now {sink.host}; audit.sink.set created={created})"
    )
    assert response.status_code == 400
    assert "A sink has this name" in response.content.decode()


def test_a_sinks_page_saved_after_another_admin_deleted_it_does_not_bring_it_back(acme, owner_client, monkeypatch):
    """Re-created, it would start over at cursor 0 and deliver the whole chain again."""
    from apps.audit.delivery import audit_sink_delete

    audit_sink_set(tenant=acme, name="siem", fields=SinkFields(kind="syslog", host="siem.example.com"), actor="test")
    real_set = views_sinks.audit_sink_set

    def deleted_first(**kwargs):
        audit_sink_delete(tenant=acme, name="siem", actor="test")
        return real_set(**kwargs)

    monkeypatch.setattr(views_sinks, "audit_sink_set", deleted_first)
    form = {"name": "siem", "kind": "syslog", "format": "jsonl", "enabled": "on", "host": "other.example.com"}
    response = owner_client.post("/settings/audit-sinks/siem/", form)
    assert response.status_code == 400
    assert audit_sink_list(acme.pk) == []


def test_a_chain_whose_unlogged_head_was_lost_is_still_due_for_delivery(acme):
    """The chain heads table is UNLOGGED: a PostgreSQL crash empties it until the next append.
    `sinks_due` (what the beat job `audit.deliver_sinks` queues) reads the events themselves, so
    the events waiting are still pushed ("a restart of ... the platform ... skips nothing")."""
    for n in range(3):
        audit_record(action="thing.happened", actor="test", data={"n": n}, chain=acme.pk)
    sink = audit_sink_set(
        tenant=acme, name="siem", fields=SinkFields(kind="syslog", host="siem.example.com"), actor="test"
    )
    head = chain_head(acme.pk)
    assert (acme.pk, sink.pk) in sinks_due()  # events waiting: due
    with connection.cursor() as cursor:  # what a crash does to the unlogged heads table
        cursor.execute("SELECT public.audit_chain_head_drop(%s)", [acme.pk])
    assert chain_head(acme.pk) == head  # the events are all there; the cursor is still 0
    assert audit_sink_list(acme.pk)[0].cursor == 0
    assert (acme.pk, sink.pk) in sinks_due(), "pending events are never queued while the head row is missing"
