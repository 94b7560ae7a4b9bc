"""How fast a workspace is exported to an archive and imported back, beside pg_dump / pg_restore.

Creates its own database and in it one workspace (provisioned as the platform does, the example
finance domain and invoice-triage agent published and deployed) with --runs runs and --rows
rows of `runs_step` (~200 bytes each as stored, the issue's workload: model and tool calls in
turn, each with a one-line summary and small record/replay JSON; ~400 bytes as an NDJSON line,
which names every column), loaded server-side with one INSERT ... SELECT generate_series. The
average row size (as stored and as NDJSON) is printed. Then measures in one run, --rounds
times each (median):

- export: `apps.lifecycle.archive.tenant_export` to a file — every table of the schema and the
  workspace's public rows, as NDJSON in a zip, SHA-256 of every member, in a REPEATABLE READ
  snapshot; beside `pg_dump -Fc -n <schema>` of the same schema (its data and DDL; no public rows,
  no checksums), the baseline;
- import: `tenant_import` of that archive as a new slug — every member's checksum verified first,
  then the tenant, its schema (cloned) and every row in one transaction, runs_step parsed ahead
  on two more connections while the schema is created (docs/export.md); beside `pg_restore` of
  the dump into an empty scratch database (the schema's DDL and data), for comparison.

Rows/s counts every row in the archive; MB/s the NDJSON bytes (uncompressed) per second.

    bin/dev bench bench/export.py [--rows 100000] [--runs 1000] [--rounds 5]

Targets (issue #11): export ≤ 3x and import ≤ 5x pg_dump's time, with checksums. Exits 1 if one
is missed or the imported workspace's rows differ in count. Uses its own database,
foundry_bench_export (and foundry_bench_export_restore for pg_restore), dropped at the end.
Takes ~1 minute.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench._support import bench_database, drop_database, owner_url, verdict

MAX_EXPORT_RATIO = 3.0
MAX_IMPORT_RATIO = 5.0
PG_BIN = Path("/usr/lib/postgresql/15/bin")
SLUG = "bench-export"
RESTORE_DATABASE = "foundry_bench_export_restore"

RUNS_SQL = """
INSERT INTO runs_run (id, agent_id, deployment_id, version_id, domain_version_id, project, provider, model, status,
    reason, message, input, output, created_by, step_count, input_tokens, output_tokens, cached_tokens, recoveries,
    trace_id, created_at, started_at, finished_at, updated_at)
SELECT md5('run' || g)::uuid, %(agent)s, %(deployment)s, %(version)s, %(domain_version)s, 'accounts-payable',
    'scripted', 'scripted-1', 'succeeded', '', '', 'Triage invoice INV-' || g, 'Approved.', 'owner@bench.test',
    %(per_run)s, 1000, 200, 0, 0, '', now(), now(), now(), now()
FROM generate_series(1, %(runs)s) AS g
"""
# ~200 bytes a row as stored (pg_column_size, the workload): model and tool calls in turn,
# each with a one-line summary and small record/replay documents, as the runtime writes them.
STEPS_SQL = """
INSERT INTO runs_step (run_id, index, node, tool, arguments, status, error, summary, provider, model, input_tokens,
    output_tokens, cached_tokens, duration_ms, record, replay, created_at)
SELECT md5('run' || (1 + (g - 1) / %(per_run)s))::uuid, 1 + (g - 1) %% %(per_run)s,
    CASE WHEN g %% 2 = 0 THEN 'tool' ELSE 'model' END, CASE WHEN g %% 2 = 0 THEN 'find_invoices' ELSE '' END,
    CASE WHEN g %% 2 = 0 THEN jsonb_build_object('number', 'INV-' || g) END, 'ok', '',
    CASE WHEN g %% 2 = 0 THEN 'Found INV-' || g ELSE 'Asked for INV-' || g END, 'scripted', 'scripted-1',
    1000 + g %% 500, 200 + g %% 100, 0, 12.5,
    CASE WHEN g %% 2 = 0 THEN '{"warnings": []}'::jsonb ELSE '{"tool_calls": 1}'::jsonb END,
    CASE WHEN g %% 2 = 0 THEN jsonb_build_object('amount', '120 EUR') ELSE '{"text": "Low risk."}'::jsonb END, now()
FROM generate_series(1, %(rows)s) AS g
"""


def setup(rows: int, runs: int):
    """The workspace, its published agent, and `runs` runs with `rows` steps in all."""
    from django.db import connection, transaction
    from django_tenants.utils import schema_context

    from apps.catalog.services import agent_deploy, version_publish
    from apps.tenants.services import tenant_provision

    root = Path(__file__).resolve().parent.parent / "examples"
    provisioned = tenant_provision(
        slug=SLUG, name="Bench export", owner_email="owner@bench.test", owner_password="correct-horse-battery-staple"
    )
    tenant, owner = provisioned.tenant, provisioned.owner
    with schema_context(tenant.schema_name), transaction.atomic():
        domain = version_publish(actor=owner, source=(root / "domains/finance.yaml").read_text(), message="bench")
        agent = version_publish(actor=owner, source=(root / "agents/invoice-triage.yaml").read_text(), message="b")
        deployment = agent_deploy(actor=owner, document=agent.version.document, number=agent.version.number)
        params = {
            "agent": agent.version.document_id,
            "deployment": deployment.pk,
            "version": agent.version.pk,
            "domain_version": domain.version.pk,
            "runs": runs,
            "per_run": rows // runs,
            "rows": rows,
        }
        with connection.cursor() as cursor:
            cursor.execute(RUNS_SQL, params)
            cursor.execute(STEPS_SQL, params)
            cursor.execute("ANALYZE")
            cursor.execute(
                "SELECT pg_total_relation_size('runs_step'), count(*), avg(pg_column_size(s.*)),"
                " avg(octet_length(row_to_json(s)::text)) FROM runs_step s"
            )
            size, count, stored, as_json = cursor.fetchone()
    if count != rows:
        sys.exit(f"loaded {count} steps, not {rows}")
    return tenant, {"bytes": size, "row": float(stored), "row_json": float(as_json)}


def timed(function, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def pg_env(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    return {
        **os.environ,
        "PGHOST": parts.hostname or "127.0.0.1",
        "PGPORT": str(parts.port or 5432),
        "PGUSER": parts.username or "",
        "PGPASSWORD": parts.password or "",
        "PGDATABASE": parts.path.lstrip("/"),
    }


def pg_dump(url: str, schema: str, target: Path) -> float:
    command = [str(PG_BIN / "pg_dump"), "-Fc", "--no-password", "-n", schema, "-f", str(target)]
    seconds, _ = timed(subprocess.run, command, env=pg_env(url), check=True)
    return seconds


def pg_restore(url: str, admin_url: str, dump: Path) -> float:
    """pg_restore of the dump into a fresh scratch database (created and dropped around it, as
    `admin_url`'s role, the owner's), which is given first the public trigger function the schema's
    triggers call (not timed)."""
    parts = urlsplit(admin_url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    scratch = urlunsplit(parts._replace(path=f"/{RESTORE_DATABASE}"))
    with psycopg.connect(url) as conn:
        function = conn.execute("SELECT pg_get_functiondef('public.foundry_refuse_change'::regproc)").fetchone()[0]
    drop_database(admin, RESTORE_DATABASE)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{RESTORE_DATABASE}"')
    with psycopg.connect(scratch, autocommit=True) as conn:
        conn.execute(function)
    try:
        command = [str(PG_BIN / "pg_restore"), "--no-password", "--no-owner", "-d", RESTORE_DATABASE, str(dump)]
        seconds, _ = timed(subprocess.run, command, env=pg_env(scratch), check=True)
    finally:
        drop_database(admin, RESTORE_DATABASE)  # retried while autovacuum still analyses the restore
    return seconds


def steps_of(schema: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{schema}".runs_step')
        return cursor.fetchone()[0]


def measure(args, tenant, url: str, admin_url: str, work: Path) -> dict:
    from apps.lifecycle.archive import archive_verify, tenant_export, tenant_import

    figures: dict[str, list[float]] = {k: [] for k in ("export", "dump", "verify", "import", "restore")}
    manifest, imported = None, []
    for number in range(args.rounds):
        archive, dump = work / f"archive-{number}.zip", work / f"schema-{number}.dump"
        with archive.open("wb") as out:
            seconds, manifest = timed(tenant_export, tenant, out)
        figures["export"].append(seconds)
        figures["dump"].append(pg_dump(url, tenant.schema_name, dump))
        figures["verify"].append(timed(archive_verify, archive)[0])
        seconds, new = timed(tenant_import, archive, slug=f"{SLUG}-copy-{number}")
        figures["import"].append(seconds)
        imported.append(steps_of(new.schema_name))
        figures["restore"].append(pg_restore(url, admin_url, dump))
    return {
        "figures": {k: statistics.median(v) for k, v in figures.items()},
        "manifest": manifest,
        "archive_bytes": (work / "archive-0.zip").stat().st_size,
        "dump_bytes": (work / "schema-0.dump").stat().st_size,
        "imported": imported,
    }


def report(args, result: dict, steps: dict) -> bool:
    f, manifest = result["figures"], result["manifest"]
    rows = manifest["rows"]
    raw = sum(m["bytes"] for m in manifest["members"])
    print(
        f"\nWorkspace: {args.rows:,} runs_step rows in {args.runs:,} runs (runs_step {steps['bytes'] / 1e6:.1f} MB"
        f" with indexes; a row {steps['row']:.0f} bytes as stored, {steps['row_json']:.0f} as an NDJSON line);"
        f" archive: {rows:,} rows in {len(manifest['members'])} members, {raw / 1e6:.1f} MB NDJSON,"
        f" {result['archive_bytes'] / 1e6:.1f} MB zipped; pg_dump -Fc: {result['dump_bytes'] / 1e6:.1f} MB."
        f" {os.cpu_count()} CPUs, 1-minute load {os.getloadavg()[0]:.1f}; median of {args.rounds} rounds."
    )
    print(f"\n  {'':<34} {'seconds':>8} {'rows/s':>10} {'MB/s':>7}")
    lines = [
        ("export (tenant_export)", f["export"]),
        ("  baseline: pg_dump -Fc -n schema", f["dump"]),
        ("verify (archive_verify, read only)", f["verify"]),
        ("import (tenant_import, verifies)", f["import"]),
        ("  baseline: pg_restore (scratch db)", f["restore"]),
    ]
    for label, seconds in lines:
        print(f"  {label:<34} {seconds:>8.2f} {rows / seconds:>10,.0f} {raw / 1e6 / seconds:>7.1f}")
    export_ratio, import_ratio = f["export"] / f["dump"], f["import"] / f["dump"]
    print(
        f"\n  export / pg_dump {export_ratio:.2f}x; import / pg_dump {import_ratio:.2f}x;"
        f" import / pg_restore {f['import'] / f['restore']:.2f}x"
    )
    print("\nTargets")
    ok = verdict(
        f"export ≤ {MAX_EXPORT_RATIO:.0f}x pg_dump's time ({export_ratio:.2f}x)", export_ratio <= MAX_EXPORT_RATIO
    )
    ok &= verdict(
        f"import ≤ {MAX_IMPORT_RATIO:.0f}x pg_dump's time ({import_ratio:.2f}x)", import_ratio <= MAX_IMPORT_RATIO
    )
    ok &= verdict(
        f"every import holds all {args.rows:,} steps ({', '.join(f'{n:,}' for n in result['imported'])})",
        all(n == args.rows for n in result["imported"]),
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="runs_step rows")
    parser.add_argument("--runs", type=int, default=1_000, help="runs the steps belong to")
    parser.add_argument("--rounds", type=int, default=5, help="measurements of each (the median is shown)")
    args = parser.parse_args()
    if args.rows % args.runs or args.rounds < 1:
        parser.error("--rows must be a multiple of --runs; --rounds ≥ 1")
    if not (PG_BIN / "pg_dump").exists():
        sys.exit(f"{PG_BIN / 'pg_dump'} is not installed (PostgreSQL 15's client tools).")

    with bench_database("foundry_bench_export") as env:
        os.environ.update({**env, "DJANGO_SETTINGS_MODULE": "foundry.settings"})
        import django

        django.setup()
        from django.db import connections

        try:
            tenant, steps = setup(args.rows, args.runs)
            with tempfile.TemporaryDirectory(prefix="bench-export-") as work:
                result = measure(args, tenant, env["DATABASE_URL"], owner_url(env), Path(work))
        finally:
            connections.close_all()
    return 0 if report(args, result, steps) else 1


if __name__ == "__main__":
    sys.exit(main())
