"""Checkpoints through a real PgBouncer in transaction mode with ONE server connection: two
tenants' runs interleave on it, and each thread's checkpoints land in its own tenant's schema."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from apps.runs.checkpoints import checkpoint_connection, checkpoint_connection_close
from apps.runs.services import run_decide, run_start
from tests.conftest import free_port, port_open_wait, tenant_user
from tests.runs.conftest import FINANCE, TRIAGE, advance, deploy

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


@pytest.fixture
def pgbouncer(settings):
    db = connection.settings_dict
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    (directory / "userlist.txt").write_text(f'"{db["USER"]}" "{db["PASSWORD"]}"\n')
    (directory / "pgbouncer.ini").write_text(
        f"""[databases]
{db["NAME"]} = host={db["HOST"] or "127.0.0.1"} port={db["PORT"] or 5432} dbname={db["NAME"]}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {directory / "userlist.txt"}
pool_mode = transaction
default_pool_size = 1
max_client_conn = 20
logfile = {directory / "pgbouncer.log"}
pidfile = {directory / "pgbouncer.pid"}
"""
    )
    for path in [directory, *directory.iterdir()]:
        os.chmod(path, 0o777 if path.is_dir() else 0o644)
    command = [PGBOUNCER, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "postgres"]  # it refuses to run as root
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    port_open_wait(port, proc)
    settings.FOUNDRY_CHECKPOINT_DATABASE_URL = (
        f"postgres://{db['USER']}:{db['PASSWORD']}@127.0.0.1:{port}/{db['NAME']}?application_name=checkpoints"
    )
    checkpoint_connection_close()
    yield port
    checkpoint_connection_close()
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(directory, ignore_errors=True)


def checkpoints_in(schema: str, run) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{schema}".checkpoints WHERE thread_id = %s', [str(run.pk)])
        return cursor.fetchone()[0]


def test_two_tenants_runs_interleave_on_one_pooled_server_connection(acme, globex, pgbouncer):
    acme_agent = deploy(acme, FINANCE, TRIAGE)
    globex_agent = deploy(globex, FINANCE, TRIAGE)
    with schema_context("acme"):
        waiting = run_start(
            actor=tenant_user(acme, "owner@acme.test"), agent=acme_agent, input="Look up the 25,000 EUR invoice."
        )
    with schema_context("globex"):
        other = run_start(
            actor=tenant_user(globex, "owner@globex.test"), agent=globex_agent, input="Triage invoice INV-1001."
        )

    assert advance(waiting, "acme").status == "waiting_approval"
    assert advance(other, "globex").status == "succeeded"
    with schema_context("acme"):
        run_decide(actor=tenant_user(acme, "owner@acme.test"), run=waiting, approved=True)
    assert advance(waiting, "acme").status == "succeeded"

    # Each thread is in its own schema only, although one server connection carried both.
    assert checkpoints_in("acme", waiting) > 0 and checkpoints_in("globex", waiting) == 0
    assert checkpoints_in("globex", other) > 0 and checkpoints_in("acme", other) == 0
    conn = checkpoint_connection()
    assert conn.info.port == pgbouncer
    with conn.cursor() as cursor:
        cursor.execute("SHOW search_path")
        assert cursor.fetchone()["search_path"] == '"$user", public'


def test_prepared_statements_are_off_for_the_pooler(pgbouncer):
    conn = checkpoint_connection()
    assert conn.prepare_threshold is None
    assert conn.autocommit
    # Many identical statements through the pooler: never prepared, so never "already exists".
    for _ in range(20):
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 AS one")
            assert cursor.fetchone()["one"] == 1
