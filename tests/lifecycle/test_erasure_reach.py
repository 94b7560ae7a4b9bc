"""How far a data-subject erasure reaches (docs/lifecycle.md "Erasing one person's data"): every
identity the person had here, the names they went by (also before an SSO sign-in renamed them,
also ending in a full stop), a token's actor row named after them, the approver's email in the
checkpoints of finished runs, and archives made before the erasure."""

import json

from django_tenants.utils import schema_context

from apps.accounts.permissions import Role
from apps.accounts.services import member_add, member_remove
from apps.audit.models import AuditActor
from apps.audit.scope import rls_scope
from apps.audit.services import audit_record
from apps.lifecycle.erasure import member_erase
from tests.api.conftest import api, issue
from tests.conftest import tenant_user

EMAIL = "pat.quinlan@acme.test"
NAME = "Patricia Quinlan"


def _actor_rows_naming(tenant, *words):
    with rls_scope(tenant.pk):
        rows = list(AuditActor.objects.filter(tenant_id=tenant.pk).values("actor_id", "display_name", "email"))
    return [
        r
        for r in rows
        if any(w.lower() in (r["display_name"] or "").lower() or w.lower() in (r["email"] or "").lower() for w in words)
    ]


def test_erasing_a_re_added_member_erases_the_actor_rows_of_their_earlier_membership(acme):
    """A member removed and added again had two actor ids: the actor rows of both are erased, and
    the audit API shows neither name nor email."""
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        first = member_add(actor=owner, email=EMAIL, role=Role.VIEWER, full_name=NAME)
        audit_record(action="test.acted", actor=first)  # an event of Pat's: their actor row
        member_remove(actor=owner, member=first)
        second = member_add(actor=owner, email=EMAIL, role=Role.VIEWER, full_name=NAME)
        audit_record(action="test.acted", actor=second)
        assert first.pk != second.pk
        erased = member_erase(actor=owner, email=EMAIL)
    assert erased.actor_id == f"user:{second.pk}"
    listing = api(acme, issue(acme, role="owner")).get("/api/v1/audit/events?page_size=200").json()
    shown = json.dumps(listing).lower()
    assert EMAIL not in shown and NAME.lower() not in shown, "the audit API still shows the erased person"
    assert _actor_rows_naming(acme, EMAIL, NAME) == [], "the actor table still names the erased person"


def test_erasing_a_former_member_who_was_a_member_twice_erases_both_actor_rows(acme):
    """Nobody left to find but the actor table, with two former ids holding the email: both erased."""
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        for _ in range(2):
            pat = member_add(actor=owner, email=EMAIL, role=Role.VIEWER, full_name=NAME)
            audit_record(action="test.acted", actor=pat)
            member_remove(actor=owner, member=pat)
        member_erase(actor=owner, email=EMAIL)
    assert _actor_rows_naming(acme, EMAIL, NAME) == [], "the actor table still names the erased person"


def test_erasure_erases_the_name_where_an_api_tokens_actor_row_holds_it(acme):
    """An API token named after the person: its actor row's name is rewritten like the token's own."""
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        member_add(actor=owner, email=EMAIL, role=Role.ADMIN, full_name=NAME)
    plaintext = issue(acme, role="viewer", scopes=("read",), name=f"{NAME} laptop")
    denied = api(acme, plaintext).post(
        "/api/v1/members/erase", {"email": "x@acme.test"}, content_type="application/json"
    )
    assert denied.status_code == 403  # an access.denied event by the token: its actor row
    with schema_context(acme.schema_name):
        assert _actor_rows_naming(acme, NAME), "test setup: the token's actor row holds its name"
        member_erase(actor=owner, email=EMAIL)
        from apps.tokens.models import ApiToken

        assert not ApiToken.objects.filter(name__icontains=NAME).exists()  # the token row itself: rewritten
    assert _actor_rows_naming(acme, NAME) == [], "the actor table still holds the erased person's name"


def test_erasure_replaces_a_name_the_person_went_by_before_an_sso_sign_in_renamed_them(acme):
    """A name the person went by before an SSO sign-in renamed them (kept in the model history)
    is replaced too."""

    from apps.identity.login import sso_login_resolve
    from tests.lifecycle.test_erasure import traces_of
    from tests.lifecycle.test_erasure_idp_subject import sso_configured

    tenant = acme
    email = f"pat@{tenant.slug}.test"
    with schema_context(tenant.schema_name):
        config = sso_configured()
        claims = {"sub": "pat-1", "email": email, "email_verified": True}
        pat = sso_login_resolve(config, {**claims, "name": "Patricia Smith"})
        audit_record(action="auth.login", actor=pat, data={"method": "sso"})
        pat = sso_login_resolve(config, {**claims, "name": "Patricia Quinlan"})
        audit_record(action="auth.login", actor=pat, data={"method": "sso"})
    assert traces_of(tenant, "Patricia Smith"), "test setup: the old name is in the model history"
    with schema_context(tenant.schema_name):
        member_erase(actor="cli:erase_member", email=email)
    assert traces_of(tenant, email, "Patricia Quinlan") == {}
    assert traces_of(tenant, "Patricia Smith") == {}, "the person's former name survives the erasure"


def test_erasure_replaces_a_name_that_ends_in_a_full_stop(acme):
    """A name ending in a non-word character ("John Smith Jr.") is matched as a whole word too."""
    from tests.lifecycle.test_erasure import traces_of

    owner = tenant_user(acme, "owner@acme.test")
    name = "John Smith Jr."
    with schema_context(acme.schema_name):
        member_add(actor=owner, email="jsj@acme.test", role=Role.VIEWER, full_name=name)
        assert traces_of(acme, name)
        member_erase(actor=owner, email="jsj@acme.test")
    assert traces_of(acme, "jsj@acme.test") == {}
    assert traces_of(acme, name) == {}, "the erased person's name is still in the workspace"


def _binary_traces(tenant, *words: str) -> dict[str, int]:
    """Rows of the workspace's schema whose bytea columns hold any of `words` (UTF-8, any case
    as given): LangGraph's checkpoint tables keep their values serialized (msgpack), as bytes."""
    from django.db import connection

    from apps.lifecycle.inventory import schema_tables

    found = {}
    with connection.cursor() as cursor:
        for table in schema_tables(tenant.schema_name):
            cursor.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
                " AND data_type = 'bytea'",
                [table.schema, table.name],
            )
            columns = [c for (c,) in cursor.fetchall()]
            if not columns:
                continue
            matches = " OR ".join(f'position(%s::bytea in "{c}") > 0' for c in columns for _ in words)
            params = [w.encode() for _ in columns for w in words]
            cursor.execute(f"SELECT count(*) FROM {table.qualified} WHERE {matches}", params)
            if count := cursor.fetchone()[0]:
                found[table.qualified] = count
    return found


def test_erasure_reaches_the_approvers_email_in_the_runs_checkpoints(fresh_tenant, db):
    """The approver's email a finished run was resumed with is in its serialised checkpoints: the
    run's checkpoints are deleted."""
    from apps.runs.models import Run
    from tests.lifecycle.test_erasure import email_of, leave_traces, traces_of
    from tests.runs.conftest import advance

    tenant = fresh_tenant
    leave_traces(tenant)  # Pat starts a run and approves its tool call
    with schema_context(tenant.schema_name):
        run = Run.objects.get()
    advance(run, tenant.schema_name)  # the worker resumes the run with Pat's decision
    email = email_of(tenant)
    assert _binary_traces(tenant, email.lower()) or _binary_traces(tenant, email), (
        "test setup: the approver's email is in the checkpoints"
    )
    with schema_context(tenant.schema_name):
        member_erase(actor=tenant_user(tenant, f"owner@{tenant.slug}.test"), email=email)
    assert traces_of(tenant, email) == {}  # the text and JSON columns: rewritten
    assert _binary_traces(tenant, email.lower()) == {} and _binary_traces(tenant, email) == {}, (
        "the erased approver's email is still in the run's checkpoints"
    )


def test_an_export_made_before_the_erasure_no_longer_hands_out_the_persons_data(acme, settings, tmp_path):
    """An archive made before the erasure is deleted with its file: its link hands nothing out."""
    from tests.lifecycle.test_exports import download, members, run_here, start

    settings.MEDIA_ROOT = str(tmp_path / "media")
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        member_add(actor=owner, email=EMAIL, role=Role.VIEWER, full_name=NAME)
    client = api(acme, issue(acme, role="owner"))
    export_id = start(client).json()["id"]
    run_here(acme, export_id)
    detail = client.get(f"/api/v1/exports/{export_id}").json()
    with schema_context(acme.schema_name):
        member_erase(actor=owner, email=EMAIL)
    response, body = download(client, detail)
    held = (
        [name for name, data in members(body).items() if EMAIL.encode() in data] if response.status_code == 200 else []
    )
    assert held == [], "an export made before the erasure still hands out the erased person's email"


def test_no_export_starts_while_an_erasure_runs(acme, monkeypatch):
    """An export started while an erasure runs would take its snapshot before the erasure commits,
    after the archives made before were deleted: its archive would hold the person's data and
    outlive the erasure. The erasure holds the workspace's exports (the lock `export_start`
    takes) until it commits."""
    import psycopg

    from apps.lifecycle import erasure
    from tests.conftest import test_database_url

    owner = tenant_user(acme, "owner@acme.test")
    seen = []
    checkpoints_delete = erasure._checkpoints_delete

    def while_erasing(threads):
        # Another process starting an export now: it may not take the lock.
        with psycopg.connect(test_database_url(), autocommit=False) as other:
            taken = other.execute(
                "SELECT pg_try_advisory_xact_lock(hashtext(%s))", ["lifecycle.export:acme"]
            ).fetchone()[0]
            seen.append(taken)
        return checkpoints_delete(threads)

    monkeypatch.setattr(erasure, "_checkpoints_delete", while_erasing)
    with schema_context("acme"):
        member_add(actor=owner, email="pat@acme.test", role=Role.VIEWER, full_name="Pat Example")
        member_erase(actor="cli:erase_member", email="pat@acme.test")
    assert seen == [False]


def test_erasure_deletes_the_checkpoints_of_a_finished_run_holding_the_email_in_another_case(fresh_tenant, db):
    """docs/lifecycle.md: "The email is replaced everywhere", and "the checkpoints of finished runs
    whose serialised state holds the email" are deleted. Text columns are rewritten whatever the
    case (the run's input loses Pat.Quinlan@… too), and so the checkpoints are searched: a finished
    run started with "Pat.Quinlan@…" keeps nothing of the erased person's address."""
    from apps.runs.services import run_start
    from tests.lifecycle.test_erasure import traces_of
    from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy

    tenant = fresh_tenant
    stored, written = f"pat.quinlan@{tenant.slug}.test", f"Pat.Quinlan@{tenant.slug}.test"
    agent = deploy(tenant, FINANCE, agent_yaml("clerk"))
    owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
    with schema_context(tenant.schema_name):
        member_add(actor=owner, email=stored, role=Role.VIEWER)
        run = run_start(actor=owner, agent=agent, input=f"Write to {written} today.", script=[{"respond": "done"}])
    run = advance(run, tenant.schema_name)
    assert run.status == "succeeded"
    assert _binary_traces(tenant, written), "test setup: the checkpoints hold the address as written"
    with schema_context(tenant.schema_name):
        member_erase(actor=owner, email=stored)
    assert traces_of(tenant, stored) == {}, "text columns: rewritten whatever the case"
    assert _binary_traces(tenant, written) == {}, "the erased person's address is still in the run's checkpoints"


def test_checkpoint_search_does_not_match_an_address_inside_another_one_s_msgpack_header(fresh_tenant, db):
    """`threads_holding` finds the threads whose checkpoints hold `data` (docs/lifecycle.md: an
    erasure deletes "the checkpoints of finished runs whose serialised state holds the email"), not
    others: in `encode(blob, 'escape')` form the msgpack header byte of a 13-byte string (0xad) is
    written `\\255`, and the needle "5pat@…" matched a run whose state holds only "pat@…"
    (another person's), until each candidate was confirmed on its bytes."""
    from apps.runs.checkpoints import checkpointer
    from apps.runs.services import run_start
    from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy

    tenant = fresh_tenant
    other = "pat@" + "x" * (13 - len("pat@") - len(".io")) + ".io"  # 13 bytes: msgpack fixstr 0xad
    assert len(other) == 13
    agent = deploy(tenant, FINANCE, agent_yaml("clerk"))
    owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
    with schema_context(tenant.schema_name):
        run = run_start(actor=owner, agent=agent, input=other, script=[{"respond": "done"}])
    run = advance(run, tenant.schema_name)
    assert run.status == "succeeded"
    with schema_context(tenant.schema_name):
        saver = checkpointer(tenant.schema_name)
        assert str(run.pk) in saver.threads_holding(other.encode()), "test setup: the run holds the address"
        assert saver.threads_holding(("5" + other).encode()) == [], "a run not holding 5pat@… was found"
