"""Model history (django-auditlog): who changed which row, from which request, in whose schema.

Entries are read back from the schema they were written in; the trail (test_chain.py) is
checked elsewhere."""

import json
import uuid
from io import StringIO

from auditlog.models import LogEntry
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import member_add, member_invite_url
from apps.audit.history import REDACTED, history_actor
from apps.runs.models import Approval, Run
from apps.runs.services import run_start
from apps.runs.tasks import run_execute
from apps.tenants.models import Tenant
from apps.tokens.models import ApiToken
from tests.api.conftest import api, issue
from tests.conftest import PASSWORD, client_for, tenant_user
from tests.runs.conftest import FINANCE, TRIAGE, deploy

LARGE = "Look up the 25,000 EUR invoice."  # invoice-triage's sandbox test that waits for an approval


def history(schema: str, instance) -> list[LogEntry]:
    """The history of `instance` kept in `schema`, oldest first."""
    with schema_context(schema):
        return list(LogEntry.objects.get_for_object(instance).order_by("timestamp", "pk"))


def request_id() -> str:
    return f"req-{uuid.uuid4().hex}"


def rows_as_text(schema: str) -> str:
    """Every history row of `schema`, as PostgreSQL renders it (no ORM decoding)."""
    with schema_context(schema), connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(e)::text FROM auditlog_logentry e")
        return "\n".join(row[0] for row in cursor.fetchall())


def constraints_hold() -> None:
    """Check now the foreign keys PostgreSQL defers to commit (a test's transaction never commits)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def test_a_role_change_in_the_console_names_the_member_the_change_and_the_request(acme, owner_client):
    owner, viewer = tenant_user(acme, "owner@acme.test"), tenant_user(acme, "viewer@acme.test")
    rid = request_id()
    response = owner_client.post(f"/members/{viewer.pk}/role/", {"role": Role.DEVELOPER}, HTTP_X_REQUEST_ID=rid)
    assert response.status_code == 302 and response["X-Request-ID"] == rid
    entry = history("acme", viewer)[-1]
    assert entry.action == LogEntry.Action.UPDATE
    assert entry.changes == {"role": [Role.VIEWER, Role.DEVELOPER]}
    assert (entry.actor_id, entry.additional_data) == (owner.pk, {"actor": f"user:{owner.pk}"})
    assert (entry.cid, entry.remote_addr) == (rid, "127.0.0.1")
    constraints_hold()


def test_a_token_revoked_over_the_api_is_attributed_to_the_token_that_revoked_it(acme):
    admin = issue(acme, name="revoker")
    doomed = issue(acme, name="doomed")
    with schema_context("acme"):
        token = ApiToken.objects.get(prefix=doomed[3:15])
    rid = request_id()
    response = api(acme, admin).delete(f"/api/v1/tokens/{token.pk}", HTTP_X_REQUEST_ID=rid)
    assert response.status_code == 200, response.content
    created, revoked = history("acme", token)
    assert set(revoked.changes) == {"revoked_at"} and revoked.changes["revoked_at"][0] is None
    assert revoked.actor_id is None  # a token is not a member: it is named, not linked
    assert (revoked.additional_data, revoked.cid) == ({"actor": f"token:{admin[3:15]}"}, rid)
    # The secret's hash is never history, nor is the once-a-minute last_used_at.
    assert "secret_hash" not in created.changes and "last_used_at" not in created.changes
    assert token.secret_hash not in rows_as_text("acme")


def test_a_token_request_carrying_a_session_cookie_is_still_the_tokens(acme, owner_client):
    admin = issue(acme, name="revoker")
    doomed = issue(acme, name="doomed")
    with schema_context("acme"):
        token = ApiToken.objects.get(prefix=doomed[3:15])
    response = owner_client.delete(f"/api/v1/tokens/{token.pk}", HTTP_AUTHORIZATION=f"Bearer {admin}")
    assert response.status_code == 200
    revoked = history("acme", token)[-1]
    assert (revoked.actor_id, revoked.additional_data) == (None, {"actor": f"token:{admin[3:15]}"})


def test_a_management_command_is_attributed_to_its_service(acme):
    plaintext = issue(acme, name="ci")
    call_command("revoke_api_token", "acme", plaintext[3:15], stdout=StringIO())
    with schema_context("acme"):
        token = ApiToken.objects.get(prefix=plaintext[3:15])
    revoked = history("acme", token)[-1]
    assert set(revoked.changes) == {"revoked_at"}
    assert (revoked.actor_id, revoked.additional_data) == (None, {"actor": "service:cli:revoke_api_token"})
    assert revoked.cid is None  # no request


def test_a_celery_task_is_attributed_to_its_task_and_closing_an_approval_is_history(acme):
    agent = deploy(acme, FINANCE, TRIAGE)
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        run = run_start(actor=owner, agent=agent, input=LARGE)
    # In this process, as the worker would run it (the test's transaction never commits).
    assert run_execute.apply(args=["acme", str(run.pk)]).get() == Run.Status.WAITING_APPROVAL
    with schema_context("acme"):
        approval = Approval.objects.get(run=run)
    (created,) = history("acme", approval)
    assert created.action == LogEntry.Action.CREATE
    assert (created.actor_id, created.additional_data) == (None, {"actor": "service:runs.execute"})
    assert created.changes["decision"] == [None, Approval.Decision.PENDING]
    # Cancelling closes the approval through save(), so the closing is history too.
    rid = request_id()
    response = client_for(acme, "owner@acme.test").post(f"/runs/{run.pk}/cancel/", HTTP_X_REQUEST_ID=rid)
    assert response.status_code in (200, 302), response.content
    closed = history("acme", approval)[-1]
    assert closed.changes["decision"] == [Approval.Decision.PENDING, Approval.Decision.CANCELLED]
    assert (closed.actor_id, closed.cid) == (owner.pk, rid)


def test_a_password_change_never_stores_the_hash(acme):
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        member = member_add(actor=owner, email="new@acme.test", role=Role.VIEWER)
        url = member_invite_url(user=member, base_url="http://acme.localhost/")
    visitor = Client(HTTP_HOST="acme.localhost")
    form = visitor.get(url)
    assert form.status_code == 302
    new_password = "a-long-and-new-passphrase-41"
    response = visitor.post(form.url, {"new_password1": new_password, "new_password2": new_password})
    assert response.status_code == 302, response.content
    member = tenant_user(acme, "new@acme.test")
    assert member.check_password(new_password)
    created, password_set = history("acme", member)
    assert created.changes["password"] == ["None", REDACTED]
    assert password_set.changes == {"password": [REDACTED, REDACTED]}
    assert password_set.additional_data == {"actor": "anonymous"}  # the invitation link, not a session
    text = rows_as_text("acme")
    assert member.password not in text and member.password.rsplit("$", 1)[-1] not in text


def test_history_stays_in_the_tenants_own_schema(acme, globex, owner_client):
    viewer = tenant_user(acme, "viewer@acme.test")
    rid = request_id()
    owner_client.post(f"/members/{viewer.pk}/role/", {"role": Role.OPERATOR}, HTTP_X_REQUEST_ID=rid)
    with schema_context("acme"):
        assert LogEntry.objects.filter(cid=rid).count() == 1
    for schema in ("globex", "public"):
        with schema_context(schema):
            assert not LogEntry.objects.filter(cid=rid).exists()
    # A table of each schema's own, not one shared table filtered by tenant.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM acme.auditlog_logentry WHERE cid = %s", [rid])
        assert cursor.fetchone()[0] == 1
        cursor.execute("SELECT count(*) FROM globex.auditlog_logentry WHERE cid = %s", [rid])
        assert cursor.fetchone()[0] == 0
    # Globex's own people, through its own console, change only globex's history.
    globex_owner = tenant_user(globex, "owner@globex.test")
    with schema_context("globex"):
        globex_member = member_add(actor=globex_owner, email="v@globex.test", role=Role.VIEWER)
    rid = request_id()
    response = client_for(globex, "owner@globex.test").post(
        f"/members/{globex_member.pk}/role/", {"role": Role.DEVELOPER}, HTTP_X_REQUEST_ID=rid
    )
    assert response.status_code == 302
    with schema_context("acme"):
        assert not LogEntry.objects.filter(cid=rid).exists()
    with schema_context("globex"):
        assert LogEntry.objects.get(cid=rid).object_pk == str(globex_member.pk)


def test_an_operator_provisioning_a_tenant_is_named_in_both_schemas(operator_client):
    with schema_context("public"):
        operator = User.objects.get(email="operator@platform.test")
    rid = request_id()
    response = operator_client.post(
        "/tenants/new/",
        {"slug": "histco", "name": "Hist Co", "plan": "team", "owner_email": "boss@histco.test"},
        HTTP_X_REQUEST_ID=rid,
    )
    assert response.status_code == 200
    tenant = Tenant.objects.get(slug="histco")
    (created,) = history("public", tenant)
    assert (created.actor_id, created.additional_data, created.cid) == (
        operator.pk,
        {"actor": f"operator:{operator.pk}"},
        rid,
    )
    assert created.changes["plan"] == [None, "team"]
    # The owner is created in the new schema, where the operator is no user: named, not linked.
    owner = tenant_user(tenant, "boss@histco.test")
    (owner_created,) = history("histco", owner)
    assert (owner_created.actor_id, owner_created.additional_data) == (None, {"actor": f"operator:{operator.pk}"})
    assert owner_created.changes["role"] == [None, Role.OWNER]
    constraints_hold()  # the operator's id was not written into the tenant's user foreign key


def test_a_suspension_by_command_is_tenant_history_in_public(acme):
    call_command("suspend_tenant", "acme", stdout=StringIO())
    entry = history("public", acme)[-1]
    assert entry.changes == {"status": [Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED]}
    assert entry.additional_data == {"actor": "service:cli:suspend_tenant"}


def test_actor_contexts_nest_and_end(acme):
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        viewer = User.objects.get(email="viewer@acme.test")
        with history_actor("cli:outer"):
            with history_actor(owner):
                viewer.full_name = "Inner"
                viewer.save(update_fields=["full_name"])
            viewer.full_name = "Outer"
            viewer.save(update_fields=["full_name"])
        viewer.full_name = "None at all"
        viewer.save(update_fields=["full_name"])
    inner, outer, bare = history("acme", viewer)[-3:]
    assert (inner.actor_id, inner.additional_data) == (owner.pk, {"actor": f"user:{owner.pk}"})
    assert (outer.actor_id, outer.additional_data) == (None, {"actor": "service:cli:outer"})
    assert (bare.actor_id, bare.additional_data) == (None, {"actor": "service:system"})
    assert json.dumps(bare.changes) == json.dumps({"full_name": ["Outer", "None at all"]})


def test_a_forged_forwarded_for_header_is_not_the_recorded_address(acme, owner_client):
    viewer = tenant_user(acme, "viewer@acme.test")
    owner_client.post(f"/members/{viewer.pk}/role/", {"role": Role.ADMIN}, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert history("acme", viewer)[-1].remote_addr == "127.0.0.1"


def test_a_sign_in_is_not_model_history(acme):
    viewer = tenant_user(acme, "viewer@acme.test")
    before = len(history("acme", viewer))
    client = Client(HTTP_HOST="acme.localhost")
    assert client.post("/login/", {"username": "viewer@acme.test", "password": PASSWORD}).status_code == 302
    assert len(history("acme", viewer)) == before  # last_login is not history (the trail has auth.login)


def test_every_model_people_change_is_registered():
    from auditlog.registry import auditlog

    assert {model._meta.label for model in auditlog.get_models()} == {
        "accounts.User",
        "tokens.ApiToken",
        "catalog.Version",
        "catalog.Deployment",
        "catalog.Document",
        "providers.ProviderCredential",
        "runs.Approval",
        "tenants.Tenant",
        "tenants.Plan",
        "billing.Price",
        "billing.Budget",
        "identity.SsoConfiguration",
        "identity.ExternalIdentity",
        "lifecycle.RetentionPolicy",
        "audit.AuditSink",
    }
