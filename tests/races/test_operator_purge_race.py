"""Two operators acting on one workspace at once from the tenant list (real threads, each with its
own database connection, against committed data; tests/races/conftest.py)."""

import threading

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.lifecycle import views_deletion
from apps.lifecycle.deletion import tenant_deletion_schedule
from apps.tenants import views as tenant_views
from apps.tenants.models import Tenant
from tests.races.conftest import Rendezvous, run_together


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _operator() -> Client:
    client = Client(HTTP_HOST="localhost", raise_request_exception=False)
    with schema_context("public"):
        client.force_login(User.objects.get(email="operator@platform.test"))
    return client


SECOND = {
    "purge": lambda slug: (f"/tenants/{slug}/purge/", {"confirm": slug}),
    "cancel": lambda slug: (f"/tenants/{slug}/delete/cancel/", {}),
    "suspend": lambda slug: (f"/tenants/{slug}/suspend/", {}),
    "limits": lambda slug: (f"/tenants/{slug}/limits/", {"burst": "5"}),
}


@pytest.mark.parametrize("other", list(SECOND))
def test_an_action_racing_a_purge_of_the_same_workspace_is_answered_4xx_not_500(
    other, fresh_tenant, django_db_blocker, monkeypatch
):
    """Operator A purges a workspace whose grace period is over while operator B purges it too,
    cancels its deletion, suspends it or sets its limits: B's action, past the page's lookup when
    A's purge commits, finds the row gone under its lock and answers 404 `tenant_not_found`."""
    slug = fresh_tenant.slug
    with django_db_blocker.unblock():
        tenant_deletion_schedule(tenant=fresh_tenant, actor="operator:test", grace_days=0)
        first, second = _operator(), _operator()
        meet = Rendezvous()
        purged = threading.Event()
        second_thread = threading.local()
        for module in (views_deletion, tenant_views):
            found = module.tenant_get

            def meeting(*, slug, _found=found):
                tenant = _found(slug=slug)
                meet.wait()  # both operators past the lookup, neither has acted yet
                if getattr(second_thread, "is_b", False):
                    purged.wait(30)  # B acts just after A's purge committed
                return tenant

            monkeypatch.setattr(module, "tenant_get", meeting)
        purge_service = views_deletion.tenant_purge

        def purge_then_signal(**kwargs):
            try:
                return purge_service(**kwargs)
            finally:
                purged.set()

        monkeypatch.setattr(views_deletion, "tenant_purge", purge_then_signal)

        path, data = SECOND[other](slug)

        def purge():
            return first.post(f"/tenants/{slug}/purge/", {"confirm": slug}).status_code

        def act():
            second_thread.is_b = True
            return second.post(path, data).status_code

        results = run_together(purge, act)
        gone = not Tenant.objects.filter(pk=fresh_tenant.pk).exists()
    assert meet.met, "the two operators did not meet after the lookup"
    assert all(exc is None for _, exc in results), results
    codes = [code for code, _ in results]
    assert gone, codes
    assert 500 not in codes, f"one of two operators acting at once got a 500: purge → {codes[0]}, {other} → {codes[1]}"
