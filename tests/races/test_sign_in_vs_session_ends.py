"""A sign-in racing a change that ends every session (a suspension), through real threads on their
own PostgreSQL connections: whichever commits first, no session of the sign-in outlives it."""

import threading
import time

from django.contrib.sessions.models import Session
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts import views as account_views
from apps.accounts.backends import PasswordBackend
from apps.tenants.models import Tenant
from apps.tenants.routing import route_cache_clear
from apps.tenants.services import tenant_resume, tenant_suspend
from tests.conftest import PASSWORD, host_of, tenant_user
from tests.races.conftest import run_together


def _suspend(tenant) -> None:
    with schema_context("public"):
        tenant_suspend(tenant=Tenant.objects.get(pk=tenant.pk), actor="operator:1")


def _after_resume(tenant, client: Client) -> tuple[int, int]:
    """(sessions left, the dashboard's status) once the workspace is active again."""
    with schema_context("public"):
        tenant_resume(tenant=Tenant.objects.get(pk=tenant.pk), actor="operator:1")
    route_cache_clear()
    with schema_context(tenant.schema_name):
        left = Session.objects.count()
    return left, client.get("/").status_code


def test_a_suspension_committed_while_credentials_are_checked_refuses_the_sign_in(
    fresh_tenant, django_db_blocker, monkeypatch
):
    """The suspension commits between the password's check and the session: the sign-in finds it
    done (the workspace's row, read under a share lock) and makes no session."""
    tenant = fresh_tenant
    email = f"viewer@{tenant.slug}.test"
    with django_db_blocker.unblock():
        tenant_user(tenant, email)
        can = PasswordBackend.user_can_authenticate
        done = []

        def can_then_suspended(self, user):
            allowed = can(self, user)
            if not done:
                done.append(True)
                thread = threading.Thread(target=lambda: run_together(lambda: _suspend(tenant)))
                thread.start()
                thread.join(30)
            return allowed

        monkeypatch.setattr(PasswordBackend, "user_can_authenticate", can_then_suspended)
        client = Client(HTTP_HOST=host_of(tenant), raise_request_exception=False)
        response = client.post("/login/", {"username": email, "password": PASSWORD})
        monkeypatch.setattr(PasswordBackend, "user_can_authenticate", can)
        left, status = _after_resume(tenant, client)
    assert done and response.status_code < 500
    assert (left, status) == (0, 302)


def test_a_suspension_started_while_the_session_is_made_waits_and_ends_it(fresh_tenant, django_db_blocker, monkeypatch):
    """The sign-in holds the workspace's row (shared) when the suspension starts: the suspension
    waits for the sign-in to commit, then ends its session with every other."""
    tenant = fresh_tenant
    email = f"viewer@{tenant.slug}.test"
    with django_db_blocker.unblock():
        tenant_user(tenant, email)
        real = account_views.member_signing_in
        threads = []

        def signing_in_then_suspended(user):
            standing = real(user)
            thread = threading.Thread(target=lambda: run_together(lambda: _suspend(tenant)))
            thread.start()
            threads.append(thread)
            time.sleep(0.5)  # the suspension is waiting for this sign-in's share of the row
            return standing

        monkeypatch.setattr(account_views, "member_signing_in", signing_in_then_suspended)
        client = Client(HTTP_HOST=host_of(tenant), raise_request_exception=False)
        response = client.post("/login/", {"username": email, "password": PASSWORD})
        monkeypatch.setattr(account_views, "member_signing_in", real)
        threads[0].join(30)
        assert Tenant.objects.get(pk=tenant.pk).status == Tenant.Status.SUSPENDED
        left, status = _after_resume(tenant, client)
    # Signed in, for the moment it lasted (302); or the suspension ended the session after the
    # sign-in committed and before the response saved it again (Django's SessionInterrupted, 400).
    assert response.status_code in (302, 400)
    assert (left, status) == (0, 302)
