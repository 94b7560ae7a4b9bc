"""A member's erasure racing that member's publish (docs/lifecycle.md, "Erasing one person's data":
catalog versions' authors are pseudonymised): a publish holds its author's row from its catalog
lock to its commit, so an erasure waits for a version in flight, then rewrites it, and a publish
that reaches its lock after the erasure is refused; no version keeps the person's email or name."""

import threading

from django.core.exceptions import PermissionDenied
from django.db import connections
from django_tenants.utils import schema_context

from apps.accounts.models import Role, User
from apps.catalog import services
from apps.catalog.models import Version
from apps.catalog.services import version_publish
from apps.lifecycle import erasure
from tests.catalog.conftest import example
from tests.conftest import PASSWORD, tenant_user

FINANCE = example("domains/finance.yaml")


NAME = "Pat Example"


def _publish_and_erase(tenant, paused: threading.Event, erased: threading.Event) -> tuple[list, list]:
    """A developer publishes while an owner erases them, the erasure starting once `paused` is set
    (the publish held there until the erasure ends, or 5 s): the versions' (author name, email)
    that still name the developer, and all of them."""
    email = f"dev@{tenant.slug}.test"
    with schema_context(tenant.schema_name):
        User.objects.create_user(email, PASSWORD, role=Role.DEVELOPER, full_name=NAME)
    owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
    dev = tenant_user(tenant, email)
    errors = []

    def publish():
        try:
            with schema_context(tenant.schema_name):
                version_publish(actor=dev, source=FINANCE, message="mine")
        except PermissionDenied:
            pass  # refused: the member is gone
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def erase():
        try:
            assert paused.wait(20)
            with schema_context(tenant.schema_name):
                erasure.member_erase(actor=owner, email=email)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            erased.set()
            connections.close_all()

    threads = [threading.Thread(target=publish), threading.Thread(target=erase)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    with schema_context(tenant.schema_name):
        authors = list(Version.objects.values_list("author_name", "author_email"))
    return [a for a in authors if email in a[1] or NAME in a[0]], authors


def test_a_publish_in_flight_while_its_author_is_erased_keeps_no_personal_data(
    fresh_tenant, django_db_blocker, monkeypatch
):
    """The publish has written its version, not yet committed, when the erasure starts: the erasure
    waits for it, then pseudonymises it."""
    inserted, erased = threading.Event(), threading.Event()
    record = services.audit_record

    def record_paused(**kwargs):  # the version is written, not yet committed
        inserted.set()
        erased.wait(5)  # the erasure waits for this publish: go on alone
        return record(**kwargs)

    monkeypatch.setattr(services, "audit_record", record_paused)
    with django_db_blocker.unblock():
        leaked, authors = _publish_and_erase(fresh_tenant, inserted, erased)
    assert authors, "the publish committed nothing"
    assert not leaked, f"catalog versions still name the erased member: {leaked}"


def test_a_publish_validated_before_its_author_is_erased_commits_no_personal_data(
    fresh_tenant, django_db_blocker, monkeypatch
):
    """The other order: the publish read its member and validated the document before the erasure,
    and reaches the catalog's lock after the erasure committed: it is refused, and writes no name."""
    validated, erased = threading.Event(), threading.Event()
    lock = services._catalog_lock

    def lock_late():  # validated already; the erasure runs and commits now
        validated.set()
        erased.wait(5)
        return lock()

    monkeypatch.setattr(services, "_catalog_lock", lock_late)
    with django_db_blocker.unblock():
        leaked, _ = _publish_and_erase(fresh_tenant, validated, erased)
    assert not leaked, f"a version committed after the erasure names the erased member: {leaked}"
