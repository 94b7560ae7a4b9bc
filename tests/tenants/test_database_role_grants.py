"""SQL run as the application's database role (say, injected) fails to rewrite the usage ledger
or to move the shared tables' sequences. Each statement runs on the test's own connection, which
is the app role's (as the application connects)."""

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django_tenants.utils import schema_context

from foundry.db.roles import app_role, owner_role

pytestmark = pytest.mark.skipif(
    owner_role() is None, reason="one database role (FOUNDRY_DB_OWNER_USER unset): it owns every table"
)

INSUFFICIENT_PRIVILEGE = "42501"


def sqlstate_of(statements: list[tuple[str, list | None]]) -> str | None:
    """Run the statements in one savepoint; the SQLSTATE the first failure raised, else None."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for statement, params in statements:
                cursor.execute(statement, params)
    except DatabaseError as error:
        return error.__cause__.sqlstate
    return None


@pytest.mark.django_db
def test_the_app_role_cannot_rewrite_the_usage_ledger_by_setting_the_erasure_gate(acme):
    """The ledger is append-only (docs/billing.md). The trigger's 'personal' erasure mode (meant for
    catalog versions' authors in a workspace's schema) let any UPDATE through, and the app role
    held UPDATE on billing_usage and sets `foundry.erasing` itself: injected SQL rewrote token
    counts and costs. Now refused twice: no UPDATE grant, and the mode passes no UPDATE in the
    public schema."""
    from apps.billing.rls import usage_scope
    from apps.runs.usage import usage_record

    with schema_context("acme"):
        usage_record(tenant_id=acme.pk, project="p", agent="a", run_id=None, step=None, provider="s",
                     model="m", input_tokens=1000, output_tokens=500)  # fmt: skip
    with usage_scope(acme.pk):
        failed = sqlstate_of([
            ("SELECT set_config('foundry.erasing', 'personal', true)", None),
            ("UPDATE public.billing_usage SET input_tokens = 0, output_tokens = 0, cost_usd = 0"
             " WHERE tenant_id = %s", [acme.pk]),
        ])  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT input_tokens, output_tokens FROM public.billing_usage WHERE tenant_id = %s", [acme.pk]
            )
            rows = cursor.fetchall()
    assert failed == INSUFFICIENT_PRIVILEGE, f"the app role rewrote the ledger in place: now {rows}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sequence", ["audit_auditevent_id_seq", "audit_auditcheckpoint_id_seq", "billing_usage_id_seq"]
)
def test_the_app_role_cannot_move_the_shared_tables_sequences(sequence):
    """`setval` (a sequence's UPDATE privilege, granted before) would let injected SQL set the audit
    trail's or the ledger's id sequence to its end, or onto ids in use, and every later append of
    every workspace would fail; a sequence's move outlives the transaction. nextval needs USAGE
    alone. The test moves each sequence to where it already is, so it changes nothing if it
    succeeds."""
    failed = sqlstate_of([
        (f"SELECT setval('public.{sequence}', last_value, is_called) FROM public.{sequence}", None),
    ])  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("SELECT has_sequence_privilege(%s, %s, 'UPDATE')", [app_role(), f"public.{sequence}"])
        (may_update,) = cursor.fetchone()
    assert failed == INSUFFICIENT_PRIVILEGE and not may_update, f"the app role may setval public.{sequence}"


@pytest.mark.django_db
def test_the_personal_erasure_mode_passes_no_update_of_the_ledger_even_for_its_owner(acme):
    """The trigger's own lock, whoever holds the grant (the owner role here; one role owning
    everything where no owner role is configured): 'personal' lets no UPDATE of a public table
    through. Its own transaction, rolled back."""
    db = connection.settings_dict
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    url = f"postgres://{owner_role()}:{settings.FOUNDRY_DB_OWNER_PASSWORD}@{host}:{port}/{db['NAME']}"
    with psycopg.connect(url) as owner, owner.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('foundry.tenant_id', %s, true), set_config('foundry.tenant_ids', %s, true)",
            [str(acme.pk)] * 2,
        )
        cursor.execute(
            "INSERT INTO public.billing_usage (tenant_id, project, agent, provider, model, input_tokens, output_tokens,"
            " cached_tokens, latency_ms, created_at) VALUES (%s, 'p', 'a', 's', 'm', 1000, 500, 0, 1, now())",
            [acme.pk],
        )
        cursor.execute("SELECT set_config('foundry.erasing', 'personal', true)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            cursor.execute("UPDATE public.billing_usage SET input_tokens = 0 WHERE tenant_id = %s", [acme.pk])
        owner.rollback()
