"""A provider access token's demotion (apps/identity/login.py `member_demoted_by_token`) stored at
the moment an admin removes that member: the two lock the member's row, then its identity's (the
removal deletes the identities with the member), in that order, so one waits for the other. The
demotion, taking the identity's row first, deadlocked with the removal: PostgreSQL aborted one of
the two (a 500 for the API or MCP call, or for the console's removal).
"""

import threading
import time

from django.db import OperationalError
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.identity import login
from apps.identity.models import ExternalIdentity, SsoConfiguration
from tests.conftest import tenant_user
from tests.races.conftest import run_together

ISSUER = "https://idp.example.test"


def test_a_token_demotion_racing_the_members_removal_does_not_deadlock(fresh_tenant, django_db_blocker, monkeypatch):
    """Expected: both finish (one waits for the other: the removal wins, the demotion finds the
    member gone and changes nothing), as every other path that locks a member and their
    identity does. Found: the two take the same two rows in opposite orders, and PostgreSQL
    kills one with a deadlock error."""
    tenant = fresh_tenant
    slug = tenant.slug
    held = threading.Event()  # the removal holds the member's row
    with django_db_blocker.unblock():
        with schema_context(tenant.schema_name):
            owner = tenant_user(tenant, f"owner@{slug}.test")
            admin = User.objects.create_user(f"admin@{slug}.test", "x-Unused-Passw0rd!", role=Role.ADMIN)
            ExternalIdentity.objects.create(issuer=ISSUER, subject="admin-sub", user=admin, email=admin.email)
        config = SsoConfiguration(issuer=ISSUER)
        claims = {"sub": "admin-sub", "iat": int(timezone.now().timestamp()) + 1}

        import apps.accounts.services as account_services

        revoke = account_services.token_revoke_issued_by

        def revoke_while_demoted(**kwargs):  # the removal holds the member's row here
            held.set()
            time.sleep(0.5)  # meanwhile the bearer request's demotion asks for the rows
            return revoke(**kwargs)

        monkeypatch.setattr(account_services, "token_revoke_issued_by", revoke_while_demoted)

        def demote():
            assert held.wait(10)
            with schema_context(tenant.schema_name):
                login.member_demoted_by_token(admin, Role.VIEWER, config, claims)

        def remove():
            with schema_context(tenant.schema_name):
                account_services.member_remove(actor=owner, member=User.objects.get(pk=admin.pk))

        results = run_together(demote, remove)
    assert held.is_set(), "the removal did not run"
    deadlocked = [exc for _, exc in results if isinstance(exc, OperationalError)]
    assert not deadlocked, f"demotion and removal deadlocked: {deadlocked[0]!r}"
    assert [exc for _, exc in results] == [None, None], results
