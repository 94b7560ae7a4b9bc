"""Deleting a workspace (apps/lifecycle/deletion.py): scheduled (suspended at once), cancelled
within the grace period, or purged — after which no table of the database holds a row with its
id, its schema is gone, Redis holds no key of it, and the platform's chain holds its tombstone."""

import io
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from apps.audit.models import PLATFORM, AuditEvent
from apps.audit.scope import rls_scope
from apps.audit.services import actor_of
from apps.audit.verify import audit_verify, chain_status
from apps.lifecycle.deletion import tenant_deletion_cancel, tenant_deletion_schedule, tenant_purge
from apps.lifecycle.tasks import purge_due
from apps.runs.admission import RunSlot
from apps.tenants.limits import login_admit
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_provision, tenant_suspend
from foundry.errors import ServiceError
from tests.api.conftest import api, issue
from tests.conftest import PASSWORD, client_for
from tests.lifecycle.test_archive import signing, stock  # noqa: F401 — `signing` is a fixture

OPERATOR = "operator:1"


def rows_with_tenant_id(tenant_id: int) -> dict[str, int]:
    """Every table of the whole database (from the catalog) with a `tenant_id` column: how many
    of its rows carry this id; and tenants_tenant's row of it. Read as the superuser would: the
    Row-Level Security settings of every policy are set for this id."""
    found = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('foundry.tenant_id', %s, true), set_config('foundry.tenant_ids', %s, true)",
            [str(tenant_id)] * 2,
        )
        cursor.execute(
            "SELECT n.nspname, c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE a.attname = 'tenant_id' AND NOT a.attisdropped"
            " AND c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        )
        tables = cursor.fetchall()
        assert ("public", "audit_auditevent") in tables and ("public", "billing_usage") in tables
        for schema, table in tables:
            cursor.execute(f'SELECT count(*) FROM "{schema}"."{table}" WHERE tenant_id = %s', [tenant_id])
            found[f"{schema}.{table}"] = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM public.tenants_tenant WHERE id = %s", [tenant_id])
        found["public.tenants_tenant"] = cursor.fetchone()[0]
    return {table: count for table, count in found.items() if count}


def schema_exists(schema: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema])
        return cursor.fetchone() is not None


def redis_keys_of(tenant: Tenant, host: str) -> list[str]:
    """Every key in every database of the platform's Redis that names this tenant's id, schema or host."""
    base = settings.CACHES["default"]["LOCATION"].rsplit("/", 1)[0]
    words = {str(tenant.pk), tenant.schema_name, host}
    found = []
    for db in range(16):
        with redis.Redis.from_url(f"{base}/{db}") as client:
            for key in client.scan_iter(count=1000):
                text = key.decode(errors="replace")
                if set(text.split(":")) & words:
                    found.append(f"{db}:{text}")
    return found


@pytest.fixture
def doomed(fresh_tenant, db, signing):  # noqa: F811
    """A workspace with data of every kind, keys in Redis (requests were made) and an export file."""
    stock(fresh_tenant, "doomed")
    token = issue(fresh_tenant)
    assert api(fresh_tenant, token).get("/api/v1/workspace").status_code == 200  # its route, cached
    # What else the platform keeps in Redis for a workspace, each by its own code path.
    assert login_admit(tenant_id=fresh_tenant.pk, client="192.0.2.1", account="someone").allowed
    slot = RunSlot(fresh_tenant.pk)
    assert slot.acquire()  # a lease a worker died holding: it would expire by itself, later
    chain_status(fresh_tenant.pk)
    default_storage.save(f"exports/{fresh_tenant.schema_name}/old.zip", ContentFile(b"archive"))
    yield fresh_tenant
    slot.release()


def schedule_now(tenant: Tenant) -> Tenant:
    return tenant_deletion_schedule(tenant=tenant, actor=OPERATOR, grace_days=0)


def test_it_purges_every_row_schema_key_and_file_of_the_workspace(doomed, acme):
    host = f"{doomed.slug}.localhost"
    before = rows_with_tenant_id(doomed.pk)
    assert {"public.audit_auditevent", "public.billing_usage", "public.tenants_domain"} <= set(before)
    assert len(redis_keys_of(doomed, host)) >= 4, "the requests left keys to purge"
    bystander = rows_with_tenant_id(acme.pk)

    purged = tenant_purge(tenant=schedule_now(doomed), actor=OPERATOR)

    assert rows_with_tenant_id(doomed.pk) == {}
    assert not schema_exists(doomed.schema_name)
    # Left: the host's route generation, which the invalidation after the commit moves on (so no
    # process caches the old route again); a counter, not the workspace's, that expires.
    assert [key for key in redis_keys_of(doomed, host) if ":tenant-route:gen:" not in key] == []
    assert not default_storage.exists(f"exports/{doomed.schema_name}/old.zip")
    assert purged.files == 1 and purged.redis_keys > 0
    assert purged.rows[f"{doomed.schema_name}.runs_step"] > 0 and purged.rows[f"{doomed.schema_name}.checkpoints"] > 0
    # Another workspace lost nothing.
    assert rows_with_tenant_id(acme.pk) == bystander
    assert schema_exists(acme.schema_name)


@pytest.mark.parametrize("slug", ["tenant", "runs", "user", "rl", "foundry", "audit"])
def test_a_purge_takes_its_workspaces_keys_and_no_other_whatever_its_slug(slug):
    """The purge's key patterns, run by a real Redis SCAN: workspace 3 named after a word other
    keys hold (a rate limit's scope, a member's label, a key prefix) takes its own keys, not those
    of workspace 1 whose member is user 3, whose IPv6 client ends in ::3, or whose single sign-on
    subject is the slug, nor those of workspace 33, of schema `<slug>_x`, of a worker, or of
    another deployment sharing the Redis."""
    from apps.lifecycle.inventory import redis_patterns
    from apps.runs.admission import _waiting_key
    from apps.runs.locks import _cancel_key
    from apps.tenants.routing import route_keys
    from tests.conftest import redis_server

    schema, host = slug, f"{slug}.localhost"
    own = {
        *("rl:tenant:3", "rl:runs:3", "rl:login-tenant:3", "rl:credential:3:user:9", "rl:credential:3:token:ab12"),
        *("rl:login-ip:3:192.0.2.1", "rl:login-account:3:192.0.2.1:someone", f"foundry:run-lock:{schema}:run-1"),
        _waiting_key(schema, "run-4"),  # a run of it that waited for a slot (runs/admission.py)
        _cancel_key(schema, "run-7"),  # a run of it that was cancelled (runs/locks.py)
        *(f"{schema}::1:audit:chain-status:3", f"{schema}::1:jwks:ab:refetch:{schema}", f"{schema}::1:views.page.x"),
        "public::1:audit:chain-status:3",
        "foundry:billing:rolled:3:2026-11-28",  # a day of its usage rolled up (billing/rollups.py)
        *route_keys(host),
    }
    others = {
        *("rl:credential:1:user:3", "rl:login-ip:1:2001:db8::3", "rl:login-ip:1:2001:db8::3:1", "rl:tenant:33"),
        *("rl:runs:13", f"rl:credential:1:sso:{slug}", f"rl:login-account:1:192.0.2.1:{slug}", "rl:tenant:1"),
        *("foundry:run-lock:acme:run-2", f"foundry:run-lock:{schema}_x:run-3", f"{schema}_x::1:views.page.x"),
        _waiting_key("acme", "run-5"),
        _waiting_key(f"{schema}_x", "run-6"),
        _cancel_key("acme", "run-8"),
        _cancel_key(f"{schema}_x", "run-9"),
        *("acme::1:audit:chain-status:1", "acme::1:audit:chain-status:33", f"acme::1:jwks:ab:refetch:{slug}"),
        *(f"foundry:worker-heartbeat:celery@{slug}", f"foundry:other_db:tenant-route:v1:{host}"),
        *(f"_kombu.binding.{slug}", f"celery-task-meta-{slug}", f"{slug}:1"),
        *route_keys(f"x.{host}"),
        *("foundry:billing:rolled:33:2026-11-28", "foundry:billing:rolled:1:2026-11-28"),
    }
    with redis_server() as (_, port), redis.Redis(port=port) as client:
        for key in own | others:
            client.set(key, 1)
        patterns = redis_patterns(tenant_id=3, schema=schema, hosts=[host])
        taken = {key.decode() for pattern in patterns for key in pattern.keys(client)}
    assert taken == own, {"missed": sorted(own - taken), "taken from others": sorted(taken - own)}


def test_purging_a_workspace_leaves_other_workspaces_rate_limit_buckets_alone(fresh_tenant, db, acme, monkeypatch):
    """Live: acme's bucket of its member whose user id is the purged workspace's id and acme's
    sign-in bucket of an IPv6 client ending in `:<id>` stay. (The keys deleted are recorded,
    since another test's cache.clear() may empty Redis meanwhile.)"""
    from types import SimpleNamespace

    from apps.lifecycle import deletion
    from apps.tenants.limits import request_admit

    n, deleted = fresh_tenant.pk, []

    class Recording:
        def __init__(self, client):
            self._client = client

        def scan_iter(self, *args, **kwargs):
            return self._client.scan_iter(*args, **kwargs)

        def delete(self, *keys):
            deleted.extend(key.decode() for key in keys)
            return self._client.delete(*keys)

    real = deletion.redis_clients
    monkeypatch.setattr(deletion, "redis_clients", lambda: [Recording(client) for client in real()])
    assert request_admit(tenant_id=acme.pk, principal=SimpleNamespace(pk=n, token=None), write=False).allowed
    assert login_admit(tenant_id=acme.pk, client=f"2001:db8::{n}", account=None).allowed
    assert login_admit(tenant_id=n, client="192.0.2.1", account=None).allowed

    tenant_purge(tenant=schedule_now(fresh_tenant), actor=OPERATOR)

    assert f"rl:login-ip:{n}:192.0.2.1" in deleted
    assert not [key for key in deleted if key.startswith(f"rl:credential:{acme.pk}:") or f":{acme.pk}:" in key]


def test_the_purge_leaves_one_tombstone_in_the_platform_chain(doomed):
    schema = doomed.schema_name
    purged = tenant_purge(tenant=schedule_now(doomed), actor=OPERATOR)
    with rls_scope(PLATFORM):
        tombstone = AuditEvent.objects.filter(tenant_id=PLATFORM, action="tenant.purged").latest("seq")
    assert (tombstone.actor_id, tombstone.target_id) == (actor_of(OPERATOR).id, str(purged.tenant_id))
    assert tombstone.data["slug"] == doomed.slug and tombstone.data["schema"] == schema
    assert tombstone.data["rows"] == purged.rows and tombstone.data["total_rows"] == purged.total > 0
    assert audit_verify(PLATFORM).ok


def test_scheduling_suspends_at_once_and_cancelling_gives_everything_back(doomed, django_capture_on_commit_callbacks):
    """Everything but the sessions, which end as a suspension's do: members sign in again."""
    token = issue(doomed)
    member = client_for(doomed, f"owner@{doomed.slug}.test")
    with django_capture_on_commit_callbacks(execute=True):
        tenant = tenant_deletion_schedule(tenant=doomed, actor=OPERATOR, grace_days=7)
    assert tenant.status == Tenant.Status.DELETING
    assert timedelta(days=6.9) < tenant.purge_after - timezone.now() < timedelta(days=7.1)
    refused = api(doomed, token).get("/api/v1/workspace")
    assert refused.status_code == 403 and b"tenant_suspended" in refused.content

    with django_capture_on_commit_callbacks(execute=True):
        tenant = tenant_deletion_cancel(tenant=tenant, actor=OPERATOR)
    assert (tenant.status, tenant.purge_after) == (Tenant.Status.ACTIVE, None)
    assert api(doomed, token).get("/api/v1/workspace").status_code == 200
    assert member.get("/").status_code == 302
    with rls_scope(PLATFORM):
        actions = list(
            AuditEvent.objects.filter(tenant_id=PLATFORM, target_id=str(doomed.pk)).values_list("action", flat=True)
        )
    assert {"tenant.deletion_scheduled", "tenant.deletion_cancelled"} <= set(actions)


def test_it_refuses_to_purge_within_the_grace_period_or_unscheduled_and_changes_nothing(doomed):
    before = rows_with_tenant_id(doomed.pk)
    with pytest.raises(ServiceError) as refused:
        tenant_purge(tenant=doomed, actor=OPERATOR)
    assert refused.value.code == "deletion_not_scheduled"
    tenant = tenant_deletion_schedule(tenant=doomed, actor=OPERATOR, grace_days=1)
    with pytest.raises(ServiceError) as refused:
        tenant_purge(tenant=tenant, actor=OPERATOR)
    assert refused.value.code == "grace_period"
    assert schema_exists(doomed.schema_name)
    # Nothing deleted: the only row more is the scheduling's event in the workspace's own chain.
    before["public.audit_auditevent"] += 1
    assert rows_with_tenant_id(doomed.pk) == before
    with pytest.raises(ServiceError) as twice:
        tenant_deletion_schedule(tenant=tenant, actor=OPERATOR)
    assert twice.value.code == "deletion_scheduled"


@pytest.mark.parametrize("grace", [-1, 366, "7", True])
def test_it_refuses_a_bad_grace_period(fresh_tenant, db, grace):
    with pytest.raises(ServiceError) as refused:
        tenant_deletion_schedule(tenant=fresh_tenant, actor=OPERATOR, grace_days=grace)
    assert refused.value.code == "grace_invalid"
    fresh_tenant.refresh_from_db()
    assert fresh_tenant.status == Tenant.Status.ACTIVE


def test_the_command_schedules_cancels_and_purges(fresh_tenant, db):
    out = io.StringIO()
    call_command("delete_tenant", fresh_tenant.slug, "--grace-days", "0", stdout=out)
    assert "suspended" in out.getvalue()
    call_command("delete_tenant", fresh_tenant.slug, "--cancel", stdout=out)
    fresh_tenant.refresh_from_db()
    assert fresh_tenant.status == Tenant.Status.ACTIVE
    with pytest.raises(CommandError, match="not scheduled"):
        call_command("delete_tenant", fresh_tenant.slug, "--purge")
    call_command("delete_tenant", fresh_tenant.slug, "--grace-days", "0", stdout=out)
    call_command("delete_tenant", fresh_tenant.slug, "--purge", stdout=out)
    assert "Purged" in out.getvalue()
    assert not Tenant.objects.filter(pk=fresh_tenant.pk).exists()
    with pytest.raises(CommandError, match="No tenant"):
        call_command("delete_tenant", fresh_tenant.slug, "--purge")
    with pytest.raises(CommandError, match="No tenant"):
        call_command("delete_tenant", "no-such-slug")


def test_the_beat_task_purges_due_workspaces_only(fresh_tenant, django_db_blocker, celery_worker_process):
    with django_db_blocker.unblock():
        waiting = tenant_provision(
            slug=f"w{fresh_tenant.slug[1:]}", name="Waiting", owner_email="o@w.test", owner_password=PASSWORD
        ).tenant
        tenant_deletion_schedule(tenant=waiting, actor=OPERATOR, grace_days=5)
        schedule_now(fresh_tenant)
        purge_due.delay()  # as beat sends it; a real worker runs it
        deadline = time.monotonic() + 60
        while Tenant.objects.filter(pk=fresh_tenant.pk).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not Tenant.objects.filter(pk=fresh_tenant.pk).exists()
        assert not schema_exists(fresh_tenant.schema_name)
        assert Tenant.objects.get(pk=waiting.pk).status == Tenant.Status.DELETING
        assert schema_exists(waiting.schema_name)
        tenant_deletion_cancel(tenant=waiting, actor=OPERATOR)


# --- the operator console and the owners' API --------------------------------------------------


def test_the_operator_schedules_cancels_and_purges_from_the_tenant_list(
    fresh_tenant, db, operator_client, django_capture_on_commit_callbacks
):
    slug = fresh_tenant.slug
    page = operator_client.get("/", {"q": slug})
    assert f"/tenants/{slug}/delete/".encode() in page.content
    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(f"/tenants/{slug}/delete/", {"grace_days": "0"})
    fresh_tenant.refresh_from_db()
    assert fresh_tenant.status == Tenant.Status.DELETING
    assert b'data-testid="purge-after"' in operator_client.get("/", {"q": slug}).content
    # Resuming is not how a deletion ends; the purge wants the slug typed.
    operator_client.post(f"/tenants/{slug}/resume/")
    operator_client.post(f"/tenants/{slug}/purge/", {"confirm": "wrong"})
    fresh_tenant.refresh_from_db()
    assert fresh_tenant.status == Tenant.Status.DELETING and schema_exists(fresh_tenant.schema_name)
    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(f"/tenants/{slug}/delete/cancel/")
    fresh_tenant.refresh_from_db()
    assert fresh_tenant.status == Tenant.Status.ACTIVE
    operator_client.post(f"/tenants/{slug}/delete/", {"grace_days": "0"})
    response = operator_client.post(f"/tenants/{slug}/purge/", {"confirm": slug}, follow=True)
    assert b"purged" in response.content
    assert not Tenant.objects.filter(pk=fresh_tenant.pk).exists()
    assert operator_client.post("/tenants/no-such/purge/", {"confirm": "no-such"}).status_code == 404


@pytest.mark.parametrize("grace", ["abc", "-3", "1000"])
def test_the_console_refuses_a_bad_grace_period(fresh_tenant, db, operator_client, grace):
    response = operator_client.post(f"/tenants/{fresh_tenant.slug}/delete/", {"grace_days": grace}, follow=True)
    assert b"grace period" in response.content
    fresh_tenant.refresh_from_db()
    assert fresh_tenant.status == Tenant.Status.ACTIVE


def test_a_refused_action_of_the_tenant_list_answers_4xx_with_its_reason(fresh_tenant, db, operator_client):
    schedule_now(fresh_tenant)
    wrong = operator_client.post(f"/tenants/{fresh_tenant.slug}/purge/", {"confirm": "not-the-slug"})
    assert wrong.status_code == 400 and "to confirm the purge" in wrong.content.decode()
    again = operator_client.post(f"/tenants/{fresh_tenant.slug}/delete/", {"grace_days": "0"})
    assert 400 <= again.status_code < 500, again.status_code
    assert Tenant.objects.filter(pk=fresh_tenant.pk).exists()


def test_a_workspace_marked_deleting_without_a_purge_time_is_refused_a_purge_not_a_500(
    fresh_tenant, db, operator_client
):
    """A status set by SQL alone (or a restore's row edited by hand): no purge time, nothing
    scheduled. The purge says so and leaves the workspace as it is."""
    Tenant.objects.filter(pk=fresh_tenant.pk).update(status=Tenant.Status.DELETING, purge_after=None)
    listed = operator_client.get("/", {"q": fresh_tenant.slug}).content.decode()
    assert "no purge scheduled" in listed and " UTC</span>" not in listed
    response = operator_client.post(f"/tenants/{fresh_tenant.slug}/purge/", {"confirm": fresh_tenant.slug})
    assert response.status_code == 409 and "is not scheduled for deletion" in response.content.decode()
    with pytest.raises(ServiceError) as refused:
        tenant_purge(tenant=Tenant.objects.get(pk=fresh_tenant.pk), actor=OPERATOR)
    assert refused.value.code == "deletion_not_scheduled"
    assert schema_exists(fresh_tenant.schema_name)
    # What the list says to do instead works: cancelled, then scheduled again.
    operator_client.post(f"/tenants/{fresh_tenant.slug}/delete/cancel/")
    operator_client.post(f"/tenants/{fresh_tenant.slug}/delete/", {"grace_days": "2"})
    fresh_tenant.refresh_from_db()
    assert fresh_tenant.status == Tenant.Status.DELETING and fresh_tenant.purge_after is not None


def test_a_member_cannot_reach_the_operator_deletion_pages(fresh_tenant, db):
    from tests.conftest import client_for

    member = client_for(fresh_tenant, f"owner@{fresh_tenant.slug}.test")
    assert member.post(f"/tenants/{fresh_tenant.slug}/delete/", {"grace_days": "0"}).status_code == 404
    fresh_tenant.refresh_from_db()
    assert fresh_tenant.status == Tenant.Status.ACTIVE


def test_the_owners_ask_for_deletion_over_the_api(fresh_tenant, db, acme, django_capture_on_commit_callbacks):
    body = {"confirm": fresh_tenant.slug}
    path = "/api/v1/workspace/deletion"
    foreign = api(fresh_tenant, issue(acme)).post(path, body, content_type="application/json")
    assert foreign.status_code == 401
    admin = api(fresh_tenant, issue(fresh_tenant, role="admin"))
    assert admin.post(path, body, content_type="application/json").status_code == 403  # owners only
    owner = api(fresh_tenant, issue(fresh_tenant, role="owner"))
    wrong = owner.post(path, {"confirm": "acme"}, content_type="application/json")
    assert wrong.status_code == 400 and b"confirm_mismatch" in wrong.content
    assert owner.post(path, {}, content_type="application/json").status_code == 400
    fresh_tenant.refresh_from_db()
    assert fresh_tenant.status == Tenant.Status.ACTIVE
    with django_capture_on_commit_callbacks(execute=True):
        done = owner.post(path, body, content_type="application/json")
    assert done.status_code == 202 and done.json()["status"] == "deleting"
    fresh_tenant.refresh_from_db()
    assert fresh_tenant.status == Tenant.Status.DELETING and fresh_tenant.purge_after
    assert owner.get("/api/v1/workspace").status_code == 403  # suspended at once
    acme.refresh_from_db()
    assert acme.status == Tenant.Status.ACTIVE


def test_cancelling_the_deletion_of_a_suspended_workspace_leaves_it_suspended(globex):
    """Everything as before the deletion was scheduled: a cancellation never lifts a suspension."""
    from apps.tenants.routing import route_cache_clear

    tenant_suspend(tenant=globex, actor=OPERATOR)
    tenant_deletion_schedule(tenant=globex, actor=OPERATOR, grace_days=5)
    assert tenant_deletion_cancel(tenant=globex, actor=OPERATOR).status == Tenant.Status.SUSPENDED
    route_cache_clear()
    response = client_for(globex).get("/api/v1/workspace")
    assert response.status_code == 403 and b"tenant_suspended" in response.content
    with rls_scope(PLATFORM):
        event = AuditEvent.objects.filter(tenant_id=PLATFORM, action="tenant.deletion_cancelled").order_by("seq").last()
    assert event.data["status"] == "suspended"


def test_one_workspace_failing_to_purge_stops_no_other(fresh_tenant, django_db_blocker, monkeypatch):
    """A workspace listed as due whose purge fails (here: gone since it was listed, purged by
    another pass) is skipped; the others are purged in the same pass."""
    from apps.lifecycle import deletion

    with django_db_blocker.unblock():
        schedule_now(fresh_tenant)
        due = deletion.tenants_due()
        monkeypatch.setattr(deletion, "tenants_due", lambda: [Tenant(slug="gone", schema_name="gone"), *due])
        assert purge_due() == len(due) >= 1
        assert not Tenant.objects.filter(pk=fresh_tenant.pk).exists()


def test_scheduling_and_cancelling_from_the_workspace_leave_the_connection_in_its_schema(
    doomed, django_capture_on_commit_callbacks
):
    """An owner schedules (or cancels) from the workspace's own host: the services work on the
    public schema, and the request goes on in the workspace's schema after them."""
    from django_tenants.utils import schema_context

    with schema_context(doomed.schema_name):
        with django_capture_on_commit_callbacks(execute=True):
            tenant = tenant_deletion_schedule(tenant=doomed, actor=OPERATOR, grace_days=7)
        scheduled_in = connection.schema_name
        with django_capture_on_commit_callbacks(execute=True):
            tenant_deletion_cancel(tenant=tenant, actor=OPERATOR)
        cancelled_in = connection.schema_name
    assert (scheduled_in, cancelled_in) == (doomed.schema_name, doomed.schema_name)
