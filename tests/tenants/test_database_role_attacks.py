"""SQL run as the app role (say, injected) plants code where the owner role or a superuser would
run it, and fails to get it run by them: in a tenant schema it owns, which migrate_platform
migrates logged in as the app role, never as the owner under `SET ROLE` (which a function could
reset: SET ROLE is checked against the session's login); and in a schema named after the
superuser, which bin/dev's conversion of an older database ignores (its search_path is
pg_catalog's only). The conversion also leaves nothing of the app role's in the public schema."""

import os
import re
import subprocess
import sys

import psycopg
import pytest
from django.db import connection

from foundry.db.roles import app_role, owner_role
from tests.conftest import ROOT, server_env, test_database_url

pytestmark = pytest.mark.skipif(
    owner_role() is None or not os.environ.get("FOUNDRY_TEST_PG_SUPERUSER"),
    reason="needs the owner role and a superuser",
)

PLANT = """
CREATE TABLE acme.planted_seen (who text);
CREATE FUNCTION acme.planted_evil() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF session_user <> current_user THEN
    PERFORM pg_catalog.set_config('role', 'none', true);          -- RESET ROLE: the session user
    INSERT INTO acme.planted_seen SELECT current_user;              -- (the owner role) from here on
    PERFORM pg_catalog.set_config('role', session_user::text, true);
  END IF;
  RETURN true;
END $$;
ALTER TABLE acme.django_migrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE acme.django_migrations FORCE ROW LEVEL SECURITY;
CREATE POLICY planted_evil ON acme.django_migrations USING (acme.planted_evil()) WITH CHECK (true);
"""

UNPLANT = """
DROP POLICY IF EXISTS planted_evil ON acme.django_migrations;
ALTER TABLE acme.django_migrations NO FORCE ROW LEVEL SECURITY;
ALTER TABLE acme.django_migrations DISABLE ROW LEVEL SECURITY;
DROP FUNCTION IF EXISTS acme.planted_evil();
DROP TABLE IF EXISTS acme.planted_seen;
"""


@pytest.fixture
def planted(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        url = test_database_url()
    with psycopg.connect(url, autocommit=True) as conn:  # the app role, as SQL injected into the app
        assert conn.execute("SELECT current_user").fetchone()[0] == app_role()
        conn.execute(PLANT)
    try:
        yield url
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(UNPLANT)


def test_code_the_app_role_plants_in_a_tenant_schema_never_runs_as_the_owner(planted):
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate_platform", "--verbosity", "0"],
        env=server_env(DJANGO_SETTINGS_MODULE="tests.settings"),
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    with psycopg.connect(planted) as conn:
        seen = {row[0] for row in conn.execute("SELECT who FROM acme.planted_seen")}
    assert owner_role() not in seen, f"migrate_platform ran the app role's function as {seen}"


SUPERUSER = os.environ.get("FOUNDRY_TEST_PG_SUPERUSER", "")


def conversion_block(database: str) -> str:
    """bin/dev pg_owner_role_setup's SQL from `\\connect foundry` on, connecting to `database`."""
    text = (ROOT / "bin" / "dev").read_text()
    function = text[text.index("pg_owner_role_setup() {") :]
    heredoc = function[function.index("<<'SQL'\n") + len("<<'SQL'\n") : function.index("\nSQL\n")]
    tail = heredoc[heredoc.index("\\connect foundry") :]
    return tail.replace("\\connect foundry", f'\\connect "{database}"', 1)


def run_block(database: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["psql", SUPERUSER, "-v", "ON_ERROR_STOP=1", "-v", f"owner={owner_role()}", "-qAt"],
        input=conversion_block(database), capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def database(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        return connection.settings_dict["NAME"], test_database_url()


def test_the_app_role_cannot_make_the_superuser_run_its_operator(database):
    name, url = database
    with psycopg.connect(SUPERUSER) as conn:
        superuser = conn.execute("SELECT current_user").fetchone()[0]
    schema = psycopg.sql.Identifier(superuser).as_string(None)
    with psycopg.connect(url, autocommit=True) as conn:  # the app role
        conn.execute(f"""
            CREATE SCHEMA {schema};
            CREATE TABLE {schema}.seen (who text, super boolean);
            GRANT USAGE ON SCHEMA {schema} TO PUBLIC; GRANT INSERT ON {schema}.seen TO PUBLIC;
            CREATE FUNCTION {schema}.eq(oid, regrole) RETURNS boolean LANGUAGE plpgsql AS $$
            BEGIN
              INSERT INTO {schema}.seen SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user;
              RETURN $1 = $2::oid;
            END $$;
            CREATE OPERATOR {schema}.= (LEFTARG = oid, RIGHTARG = regrole, FUNCTION = {schema}.eq);
        """)  # fmt: skip
    try:
        done = run_block(name)
        assert done.returncode == 0, done.stderr
        with psycopg.connect(url) as conn:
            ran_as = conn.execute(f"SELECT DISTINCT who, super FROM {schema}.seen").fetchall()
        assert ran_as == [], f"bin/dev's conversion ran the app role's operator as {ran_as}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


OBJECTS = {
    "partitioned": "CREATE TABLE public.planted_part (tenant_id bigint, v int) PARTITION BY LIST (tenant_id);"
    " CREATE TABLE public.planted_part_1 PARTITION OF public.planted_part FOR VALUES IN (1);"
    " ALTER TABLE public.planted_part OWNER TO {app}; ALTER TABLE public.planted_part_1 OWNER TO {app};",
    "composite type": "CREATE TYPE public.planted_comp AS (a int); ALTER TYPE public.planted_comp OWNER TO {app};",
    "materialized view": "CREATE MATERIALIZED VIEW public.planted_mv AS SELECT 1 AS x;"
    " ALTER MATERIALIZED VIEW public.planted_mv OWNER TO {app};",
}
DROPS = (
    "DROP TABLE IF EXISTS public.planted_part; DROP TYPE IF EXISTS public.planted_comp;"
    " DROP MATERIALIZED VIEW IF EXISTS public.planted_mv;"
)


@pytest.mark.parametrize("kind", list(OBJECTS))
def test_the_conversion_gives_the_owner_every_public_object_of_the_app_role(database, kind):
    name, _ = database
    superuser_db = re.sub(r"dbname=\S+", f"dbname={name}", SUPERUSER)
    with psycopg.connect(superuser_db, autocommit=True) as conn:
        conn.execute(OBJECTS[kind].format(app=psycopg.sql.Identifier(app_role()).as_string(None)))
    try:
        done = run_block(name)
        assert done.returncode == 0, done.stderr
        with psycopg.connect(superuser_db) as conn:
            left = conn.execute(
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relowner = %s::regrole"
                " UNION ALL SELECT typname FROM pg_type WHERE typnamespace = 'public'::regnamespace"
                " AND typowner = %s::regrole",
                [app_role(), app_role()],
            ).fetchall()
        assert left == [], f"still the app role's after the conversion: {left}"
    finally:
        with psycopg.connect(superuser_db, autocommit=True) as conn:
            conn.execute(DROPS)
