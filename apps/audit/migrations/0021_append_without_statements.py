"""`audit_append` runs three statements fewer per append (measured by bench/audit.py, both
versions in the same run; see the commit).

Each plpgsql `PERFORM` is a query: it starts an executor (a Result node, its projection, a
snapshot) and shuts it down, once per append, for a call whose value is thrown away. An
assignment of the same call is a plpgsql "simple expression", evaluated directly. So:

- the tenant setting is set and put back by assignment (`setting := set_config(...)`);
- the chain's advisory lock is taken by `pg_try_advisory_xact_lock` in an `IF`, which waits on
  `pg_advisory_xact_lock` (the same lock, the same queue) only when another writer holds it;
- the row comes back as the composite type `audit_appended`, not through OUT parameters, whose
  row type PostgreSQL rebuilt from the function's (compressed) argument lists twice per call:
  once for the caller's scan and once for the function's RETURN.

Callers are unchanged: `SELECT seq, hash FROM public.audit_append(...)`.
"""

from importlib import import_module

from django.db import migrations

SIGNATURE = "bigint, text, text, text, text, text, text, text, text, text, text, text, text"
_PREVIOUS = import_module("apps.audit.migrations.0017_purged_chain_closed").APPEND_SQL
_LOCK = "    PERFORM pg_catalog.pg_advisory_xact_lock(p_tenant - 4611686018427387904);  -- the chain's queue (0012)\n"
_TRY_LOCK = """    IF NOT pg_catalog.pg_try_advisory_xact_lock(p_tenant - 4611686018427387904) THEN  -- the chain's queue (0012)
        PERFORM pg_catalog.pg_advisory_xact_lock(p_tenant - 4611686018427387904);
    END IF;
"""
_OUT = ",\n    p_actor_name text, p_actor_email text, OUT seq bigint, OUT hash text, OUT occurred_at timestamptz\n) LANGUAGE"
_RETURNS = ",\n    p_actor_name text, p_actor_email text\n) RETURNS public.audit_appended LANGUAGE"
_END = "    PERFORM pg_catalog.set_config('foundry.tenant_id', coalesce(previous_tenant, ''), true);\nEND"

APPEND_SQL = (
    _PREVIOUS.replace("CREATE OR REPLACE FUNCTION", "CREATE FUNCTION", 1)
    .replace(_OUT, _RETURNS, 1)
    .replace("    fate text;\n", "    fate text;\n    setting text;\n    appended public.audit_appended;\n", 1)
    .replace(_LOCK, _TRY_LOCK, 1)
    .replace(_END, _END.replace("\nEND", "\n    RETURN appended;\nEND"), 1)
    .replace("PERFORM pg_catalog.set_config(", "setting := pg_catalog.set_config(")
    .replace("INTO seq, hash, occurred_at;", "INTO appended;", 1)
    .replace("audit_append.occurred_at", "appended.occurred_at", 1)
)
assert "PERFORM pg_catalog.set_config" not in APPEND_SQL and APPEND_SQL.count("RETURN appended;") == 1
assert "OUT seq" not in APPEND_SQL and "pg_try_advisory_xact_lock" in APPEND_SQL
assert "audit_append.occurred_at" not in APPEND_SQL and "INTO appended;" in APPEND_SQL

FORWARD_SQL = f"""
DROP FUNCTION public.audit_append({SIGNATURE});
CREATE TYPE public.audit_appended AS (seq bigint, hash text, occurred_at timestamptz);
{APPEND_SQL}
"""
REVERSE_SQL = f"""
DROP FUNCTION public.audit_append({SIGNATURE});
DROP TYPE public.audit_appended;
{_PREVIOUS.replace("CREATE OR REPLACE FUNCTION", "CREATE FUNCTION", 1)}
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0020_pruned_guard_function")]

    operations = [migrations.RunSQL(FORWARD_SQL, REVERSE_SQL)]
