"""Three guards on the trail's functions (found by a review):

- An event's time is the database clock, read once the writer holds its chain (0013 took the
  later of it and the head row's time; the head is the app role's to write, so one UPDATE of it
  stamped every later genuine event with a time of its choosing). A clock set back shows in
  `audit_verify` as `time_reversed` instead of being hidden.
- `audit.pruned`, which `audit_verify` takes as the record of a prune, is appended only by the
  owner's prune: `audit_append` refuses that action from a role that is not the trail's owner (or
  a member of it, as a superuser is): the app role could otherwise excuse a hand-made cut of its
  chain by appending one. With one role for everything there is no other role to tell apart.
- The platform's chain (0) is never pruned: no retention policy covers it, and it holds what
  guards a workspace's purge (0009).
"""

from importlib import import_module

from django.db import migrations

_APPEND_PREVIOUS = import_module("apps.audit.migrations.0013_append_one_statement").SQL
_PRUNE_PREVIOUS = import_module("apps.audit.migrations.0012_append_queue").PRUNE_SQL

_OWNER_ONLY = """BEGIN
    IF p_action = 'audit.pruned' AND NOT pg_catalog.pg_has_role((
        SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = 'public.audit_auditevent'::pg_catalog.regclass
    ), 'MEMBER') THEN
        RAISE EXCEPTION 'audit.pruned is appended by the owner''s prune only' USING ERRCODE = '42501';
    END IF;
"""
APPEND_SQL = _APPEND_PREVIOUS.replace("greatest(at, c.updated_at)", "at").replace("BEGIN\n", _OWNER_ONLY, 1)
assert "greatest" not in APPEND_SQL and APPEND_SQL.count("audit.pruned") == 2

_NOT_PLATFORM = """BEGIN
    IF p_tenant = 0 THEN
        RAISE EXCEPTION 'the platform''s audit chain is not pruned' USING ERRCODE = '42501';
    END IF;
"""
PRUNE_SQL = _PRUNE_PREVIOUS.replace("BEGIN\n", _NOT_PLATFORM, 1)
assert PRUNE_SQL != _PRUNE_PREVIOUS


class Migration(migrations.Migration):
    dependencies = [("audit", "0013_append_one_statement")]

    operations = [migrations.RunSQL(APPEND_SQL, _APPEND_PREVIOUS), migrations.RunSQL(PRUNE_SQL, _PRUNE_PREVIOUS)]
