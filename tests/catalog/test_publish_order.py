"""Versions are committed one at a time, in the order of their `created_at`, which orders the
catalog's git history: a publish committed late can never slip in before commits (and tags) a
client has already fetched."""

import threading

from django.db import connection
from django_tenants.utils import schema_context

from apps.catalog import services
from apps.catalog.history import history_build
from apps.catalog.models import Version
from apps.catalog.services import version_publish
from tests.catalog.conftest import example
from tests.conftest import tenant_user

FINANCE = example("domains/finance.yaml")


def _domain(name: str) -> str:
    return FINANCE.replace("name: finance", f"name: {name}", 1)


def test_a_publish_waits_for_the_one_in_flight(fresh_tenant, django_db_blocker, monkeypatch):
    paused, release = threading.Event(), threading.Event()
    slow, errors = {}, []
    audit_record = services.audit_record

    def audit_record_paused(**kwargs):  # the first publisher stalls between its row and its commit
        if threading.get_ident() == slow.get("ident"):
            paused.set()
            release.wait(20)
        return audit_record(**kwargs)

    monkeypatch.setattr(services, "audit_record", audit_record_paused)

    def publisher(name: str, stalls: bool) -> None:
        if stalls:
            slow["ident"] = threading.get_ident()
        try:
            with schema_context(fresh_tenant.schema_name):
                owner = tenant_user(fresh_tenant, f"owner@{fresh_tenant.slug}.test")
                version_publish(actor=owner, source=_domain(name))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    with django_db_blocker.unblock():
        early = threading.Thread(target=publisher, args=("early", True))
        early.start()
        assert paused.wait(20)
        late = threading.Thread(target=publisher, args=("late", False))
        late.start()
        late.join(1.0)
        assert late.is_alive()  # it waits for the publish in flight to commit
        release.set()
        early.join(30)
        late.join(30)
        with schema_context(fresh_tenant.schema_name):
            order = list(Version.objects.order_by("created_at").values_list("document__name", flat=True))
            refs = history_build().refs
    assert not errors, errors
    assert order == ["early", "late"]
    assert b"refs/tags/dis/early/v1" in refs and b"refs/tags/dis/late/v1" in refs
