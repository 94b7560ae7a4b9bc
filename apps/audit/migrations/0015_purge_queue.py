"""The owner's purge of a workspace's chain locks the chain before it deletes anything: its
advisory lock (0012, as appends and the prune take it) and its head row (as the head's signer
takes it, FOR KEY SHARE). A checkpoint signed while the purge ran was stored after the purge had
deleted the chain's checkpoints — a row of a workspace that no longer exists, which nothing would
delete (append-only); now the signer waits for the purge and then finds no head to sign, or the
purge waits for the signer and deletes its checkpoint with the rest. Found by a review."""

from importlib import import_module

from django.db import migrations

_PREVIOUS = import_module("apps.audit.migrations.0009_purge_gate").SQL
_LOCKED = """    PERFORM set_config('foundry.erasing', 'on', true);
    PERFORM pg_advisory_xact_lock(p_tenant - 4611686018427387904);  -- the chain's queue (0012)
    PERFORM 1 FROM public.audit_auditchain h WHERE h.tenant_id = p_tenant FOR UPDATE;
"""
SQL = _PREVIOUS.replace("    PERFORM set_config('foundry.erasing', 'on', true);\n", _LOCKED, 1)
assert SQL != _PREVIOUS


class Migration(migrations.Migration):
    dependencies = [("audit", "0014_append_guards")]

    operations = [migrations.RunSQL(SQL, _PREVIOUS)]
