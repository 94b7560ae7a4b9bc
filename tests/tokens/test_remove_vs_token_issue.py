"""A token issuing a token while its member is removed waits for the removal, then is refused:
both take the member's row before the token's (a removal: the member, then each of their
tokens; an issue: the member, then the issuing token), so neither deadlocks the other. The
test pauses the removal right after it locks the member and starts the issue meanwhile."""

import threading
import time

from django.db import connections
from django_tenants.utils import schema_context

import apps.accounts.services as account_services
from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.tokens.models import ApiToken
from apps.tokens.services import token_issue
from tests.api.conftest import api
from tests.conftest import PASSWORD, client_for

ALL = ["read", "write", "run", "admin"]


def test_removing_a_member_while_their_token_issues_a_token_does_not_deadlock(
    fresh_tenant, django_db_blocker, monkeypatch
):
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        with schema_context(tenant.schema_name):
            admin = User.objects.create_user(f"admin@{tenant.slug}.test", PASSWORD, role=Role.ADMIN)
            parent = token_issue(actor=admin, name="parent", role="admin", scopes=ALL).plaintext
        owner_session = client_for(tenant, f"owner@{tenant.slug}.test")
        token_client = api(tenant, parent)
        token_client.get("/api/v1/members")  # last_used_at written now, not during the race
        # A server error is a 500 answer here, not re-raised (the test client's exception signal is
        # global: each client would also re-raise the other thread's exception).
        owner_session.raise_request_exception = token_client.raise_request_exception = False

        member_locked = threading.Event()
        real_record = account_services.audit_record

        def record_pausing(*args, **kwargs):
            result = real_record(*args, **kwargs)
            if kwargs.get("action") == "member.removed":
                member_locked.set()
                time.sleep(1.5)  # the removal holds the member's row; the issue locks its token now
            return result

        monkeypatch.setattr(account_services, "audit_record", record_pausing)
        out = {}

        def remove():
            try:
                out["remove"] = owner_session.post(f"/members/{admin.pk}/remove/").status_code
            except BaseException as exc:  # noqa: BLE001
                out["remove"] = exc
            finally:
                connections.close_all()

        def issue_child():
            member_locked.wait(10)
            try:
                out["issue"] = token_client.post(
                    "/api/v1/tokens",
                    {"name": "child", "role": "viewer", "scopes": ["read"]},
                    content_type="application/json",
                ).status_code
            except BaseException as exc:  # noqa: BLE001
                out["issue"] = exc
            finally:
                connections.close_all()

        threads = [threading.Thread(target=remove), threading.Thread(target=issue_child)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        with schema_context(tenant.schema_name):
            member_left = User.objects.filter(pk=admin.pk).exists()
            children = list(ApiToken.objects.filter(name="child").values_list("revoked_at", flat=True))

    failures = {k: v for k, v in out.items() if isinstance(v, BaseException) or v == 500}
    assert not failures, f"a concurrent removal and token issue deadlocked: {out!r}"
    assert out == {"remove": 302, "issue": 403}, out
    assert not member_left
    assert all(revoked is not None for revoked in children)
