"""A data-subject erasure (apps/lifecycle/erasure.py): after it, no text of the workspace — any
column of any table, found in the catalog — holds the person's email or name; the audit chain
still verifies; another workspace where the same person is a member keeps everything."""

import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import member_add
from apps.audit.models import AuditActor
from apps.audit.scope import rls_scope
from apps.audit.verify import audit_verify
from apps.catalog.models import Version
from apps.catalog.services import agent_deploy, version_publish
from apps.lifecycle.erasure import member_erase
from apps.lifecycle.inventory import public_tenant_tables, schema_tables
from apps.runs.models import Run
from apps.runs.services import run_decide, run_start
from apps.tenants.models import Tenant
from apps.tokens.services import token_issue
from tests.api.conftest import api, issue
from tests.conftest import PASSWORD, client_for, tenant_user
from tests.runs.conftest import FINANCE, TRIAGE, advance

NAME = "Patricia Quinlan"


def email_of(tenant: Tenant) -> str:
    return f"Pat.Quinlan@{tenant.slug}.test"


def traces_of(tenant: Tenant, *words: str) -> dict[str, int]:
    """Rows of the workspace (its schema's tables, its rows of public tables) whose text or JSON
    holds any of `words`, case-insensitively: table → count."""
    found = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('foundry.tenant_id', %s, true), set_config('foundry.tenant_ids', %s, true)",
            [str(tenant.pk)] * 2,
        )
        for table in [*schema_tables(tenant.schema_name), *public_tenant_tables()]:
            cursor.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
                " AND data_type IN ('text', 'character varying', 'json', 'jsonb')",
                [table.schema, table.name],
            )
            columns = [c for (c,) in cursor.fetchall()]
            if not columns:
                continue
            matches = " OR ".join(f'strpos(lower("{c}"::text), lower(%s)) > 0' for c in columns for _ in words)
            scope = " AND tenant_id = %s" if table.schema == "public" else ""
            params = [w for _ in columns for w in words] + ([tenant.pk] if scope else [])
            cursor.execute(f"SELECT count(*) FROM {table.qualified} WHERE ({matches}){scope}", params)
            if count := cursor.fetchone()[0]:
                found[table.qualified] = count
    return found


def leave_traces(tenant: Tenant) -> User:
    """Pat joins, publishes and deploys an agent, starts a run, approves its tool call, issues a
    token and signs in: their email and name end up in many tables."""
    owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
    with schema_context(tenant.schema_name):
        pat = member_add(actor=owner, email=email_of(tenant), role=Role.ADMIN, full_name=NAME)
        pat.set_password(PASSWORD)
        pat.save(update_fields=["password"])
        for source in (FINANCE, TRIAGE):
            published = version_publish(actor=pat, source=source, message=f"by {NAME}")
        agent = published.version.document
        agent_deploy(actor=pat, document=agent, number=published.version.number)
        agent.refresh_from_db()
        token_issue(actor=pat, name="pat's token", role="developer", scopes=["read"])
        run = run_start(actor=pat, agent=agent, input="Look up the 25,000 EUR invoice.")
    run = advance(run, tenant.schema_name)
    assert run.status == "waiting_approval"
    with schema_context(tenant.schema_name):
        run_decide(actor=pat, run=run, approved=True, comment="looks right")
    assert client_for(tenant, pat.email).get("/").status_code in (200, 302)  # a session
    return pat


@pytest.fixture
def traced(fresh_tenant, db):
    leave_traces(fresh_tenant)
    return fresh_tenant


def test_it_leaves_no_trace_of_the_persons_email_or_name_in_the_workspace(traced):
    before = traces_of(traced, email_of(traced), NAME)
    assert {f'"{traced.schema_name}"."catalog_version"', f'"{traced.schema_name}"."runs_run"'} <= set(before)
    owner = tenant_user(traced, f"owner@{traced.slug}.test")
    with schema_context(traced.schema_name):
        pat_id = User.objects.get(email__iexact=email_of(traced)).pk
        erased = member_erase(actor=owner, email=email_of(traced))
    assert erased.member_removed and erased.actor_id == f"user:{pat_id}" and erased.sessions == 1
    assert traces_of(traced, email_of(traced), NAME) == {}
    with schema_context(traced.schema_name):
        assert not User.objects.filter(pk=pat_id).exists()
        # What Pat did stays attributed, to the pseudonym.
        versions = Version.objects.filter(author_email=erased.pseudonym)
        assert versions.count() == 2 and {v.author_name for v in versions} == {f"Erased user-{pat_id}"}
        assert Run.objects.filter(created_by=erased.pseudonym).exists()
    with rls_scope(traced.pk):
        actor = AuditActor.objects.get(tenant_id=traced.pk, actor_id=f"user:{pat_id}")
    assert (actor.email, actor.display_name) == (None, None) and actor.erased_at
    assert audit_verify(traced.pk).ok


def test_the_same_person_in_another_workspace_keeps_everything(traced, acme):
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        member_add(actor=owner, email=email_of(traced), role=Role.VIEWER, full_name=NAME)
    before = traces_of(acme, email_of(traced), NAME)
    assert before
    with schema_context(traced.schema_name):
        member_erase(actor=tenant_user(traced, f"owner@{traced.slug}.test"), email=email_of(traced))
    assert traces_of(acme, email_of(traced), NAME) == before
    with schema_context(acme.schema_name):
        assert User.objects.filter(email__iexact=email_of(traced), full_name=NAME).exists()


def test_a_former_member_is_found_by_the_audit_actor_table(traced):
    owner = tenant_user(traced, f"owner@{traced.slug}.test")
    with schema_context(traced.schema_name):
        pat = User.objects.get(email__iexact=email_of(traced))
        from apps.accounts.services import member_remove

        member_remove(actor=owner, member=pat)
        erased = member_erase(actor=owner, email=email_of(traced))
    assert erased.actor_id == f"user:{pat.pk}" and not erased.member_removed
    assert traces_of(traced, email_of(traced), NAME) == {}


def test_refusals_change_nothing(traced):
    owner = tenant_user(traced, f"owner@{traced.slug}.test")
    before = traces_of(traced, email_of(traced), NAME)
    with schema_context(traced.schema_name):
        viewer = member_add(actor=owner, email=f"viewer2@{traced.slug}.test", role=Role.VIEWER)
        with pytest.raises(PermissionDenied):
            member_erase(actor=viewer, email=email_of(traced))
        with pytest.raises(ValidationError) as unknown:
            member_erase(actor=owner, email="nobody@nowhere.test")
        assert unknown.value.code == "person_unknown"
        with pytest.raises(ValidationError) as self_:
            member_erase(actor=owner, email=f"owner@{traced.slug}.test")
        assert self_.value.code == "erase_self"
        with pytest.raises(ValidationError):
            member_erase(actor=owner, email="not an email")
    assert traces_of(traced, email_of(traced), NAME) == before


def test_the_api_erases_and_another_workspaces_token_cannot(traced, acme):
    body = {"email": email_of(traced)}
    foreign = api(traced, issue(acme)).post("/api/v1/members/erase", body, content_type="application/json")
    assert foreign.status_code == 401
    reader = api(traced, issue(traced, role="viewer", scopes=("read",)))
    assert reader.post("/api/v1/members/erase", body, content_type="application/json").status_code == 403
    admin = api(traced, issue(traced))
    bad = admin.post("/api/v1/members/erase", {"email": 7}, content_type="application/json")
    assert bad.status_code == 400
    assert traces_of(traced, email_of(traced), NAME)
    done = admin.post("/api/v1/members/erase", body, content_type="application/json")
    assert done.status_code == 200, done.content
    assert done.json()["member_removed"] is True
    assert traces_of(traced, email_of(traced), NAME) == {}
    again = admin.post("/api/v1/members/erase", body, content_type="application/json")
    assert again.status_code == 400 and b"person_unknown" in again.content


def test_an_owner_is_erased_by_an_owner_whatever_the_credential(acme):
    """An admin may not erase an owner, signed in or through an admin token (docs/lifecycle.md)."""
    with schema_context("acme"):
        User.objects.create_user("owner2@acme.test", PASSWORD, role=Role.OWNER)
    body = {"email": "owner2@acme.test"}
    for admin in (client_for(acme, "admin@acme.test"), api(acme, issue(acme, role="admin", scopes=["admin"]))):
        assert admin.post("/api/v1/members/erase", body, content_type="application/json").status_code == 403
    with schema_context("acme"):
        assert User.objects.filter(email="owner2@acme.test", role=Role.OWNER).exists()
    owner = api(acme, issue(acme, role="owner", scopes=["admin"]))
    erased = owner.post("/api/v1/members/erase", body, content_type="application/json")
    assert erased.status_code == 200 and erased.json()["member_removed"] is True


def test_the_command_erases_and_names_a_bad_slug(traced):
    out = io.StringIO()
    call_command("erase_member", traced.slug, email_of(traced), stdout=out)
    assert "rows rewritten" in out.getvalue()
    assert traces_of(traced, email_of(traced), NAME) == {}
    with pytest.raises(CommandError, match="No tenant"):
        call_command("erase_member", "no-such-slug", email_of(traced))
    with pytest.raises(CommandError, match="No one"):
        call_command("erase_member", traced.slug, email_of(traced))


def test_a_member_made_an_owner_while_an_admin_erases_them_is_an_owners_erasure(acme, monkeypatch):
    """The member is read again, locked, once the owners are held: an owner promoting them in the
    meantime (here, just before the lock) makes theirs an owner's erasure, refused to an admin."""
    from apps.lifecycle import erasure

    with schema_context("acme"):
        User.objects.create_user("rising@acme.test", PASSWORD, role=Role.DEVELOPER)
        admin = tenant_user(acme, "admin@acme.test")
        held = erasure.owners_hold

        def promoted_meanwhile():
            User.objects.filter(email="rising@acme.test").update(role=Role.OWNER)
            held()

        monkeypatch.setattr(erasure, "owners_hold", promoted_meanwhile)
        with pytest.raises(PermissionDenied):
            member_erase(actor=admin, email="rising@acme.test")
        assert User.objects.filter(email="rising@acme.test").exists()  # (the promotion here rolled back with it)
