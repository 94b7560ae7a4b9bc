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


def test_a_publish_in_flight_while_its_author_is_erased_keeps_no_personal_data(
    fresh_tenant, django_db_blocker, monkeypatch
):
    tenant = fresh_tenant
    email = f"dev@{tenant.slug}.test"
    with django_db_blocker.unblock():
        with schema_context(tenant.schema_name):
            User.objects.create_user(email, PASSWORD, role=Role.DEVELOPER, full_name="Pat Example")
        owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
        dev = tenant_user(tenant, email)
        inserted, erased = threading.Event(), threading.Event()
        record = services.audit_record

        def record_paused(**kwargs):  # the version is written, not yet committed
            inserted.set()
            erased.wait(5)  # a fixed product makes the erasure wait for this publish: go on alone
            return record(**kwargs)

        monkeypatch.setattr(services, "audit_record", record_paused)
        errors = []

        def publish():
            try:
                with schema_context(tenant.schema_name):
                    version_publish(actor=dev, source=FINANCE, message="mine")
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                connections.close_all()

        def erase():
            try:
                assert inserted.wait(20)
                with schema_context(tenant.schema_name):
                    erasure.member_erase(actor=owner, email=email)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                erased.set()
                connections.close_all()

        threads = [threading.Thread(target=publish), threading.Thread(target=erase)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        with schema_context(tenant.schema_name):
            authors = list(Version.objects.values_list("author_name", "author_email"))
    assert not errors, errors
    assert authors, "the publish committed nothing"
    leaked = [a for a in authors if email in a[1] or "Pat Example" in a[0]]
    assert not leaked, f"catalog versions still name the erased member: {leaked}"


def test_a_publish_validated_before_its_author_is_erased_commits_no_personal_data(
    fresh_tenant, django_db_blocker, monkeypatch
):
    """The other order: the publish read its member and validated the document before the erasure,
    and reaches the catalog's lock after the erasure committed. The member is gone: it may be
    refused (as `actor_now` refuses a removed member), but must not write their name and email."""
    tenant = fresh_tenant
    email = f"dev@{tenant.slug}.test"
    with django_db_blocker.unblock():
        with schema_context(tenant.schema_name):
            User.objects.create_user(email, PASSWORD, role=Role.DEVELOPER, full_name="Pat Example")
        owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
        dev = tenant_user(tenant, email)
        validated, erased = threading.Event(), threading.Event()
        lock = services._catalog_lock

        def lock_late():  # validated already; the erasure runs and commits now
            validated.set()
            erased.wait(5)
            return lock()

        monkeypatch.setattr(services, "_catalog_lock", lock_late)
        errors = []

        def publish():
            try:
                with schema_context(tenant.schema_name):
                    version_publish(actor=dev, source=FINANCE, message="mine")
            except PermissionDenied:
                pass  # refused: the member is gone
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                connections.close_all()

        def erase():
            try:
                assert validated.wait(20)
                with schema_context(tenant.schema_name):
                    erasure.member_erase(actor=owner, email=email)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                erased.set()
                connections.close_all()

        threads = [threading.Thread(target=publish), threading.Thread(target=erase)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        with schema_context(tenant.schema_name):
            authors = list(Version.objects.values_list("author_name", "author_email"))
    assert not errors, errors
    leaked = [a for a in authors if email in a[1] or "Pat Example" in a[0]]
    assert not leaked, f"a version committed after the erasure names the erased member: {leaked}"
