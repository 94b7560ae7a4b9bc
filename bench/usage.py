"""What the usage ledger's Row-Level Security costs: records written per second with RLS on vs off.

Creates its own database with --tenants tenants (rows in tenants_tenant only, no schemas; plan
"team" with a monthly-token override far above what is spent, so every write looks its caps up
and crosses none) and one price, loads --rows ledger rows spread over three months and over every
tenant (one INSERT ... SELECT generate_series inside the tenants' `usage_scope`, RLS on), then
measures in one run, switching the policy of `billing_usage` and `billing_usage_month` between

    on:  ENABLE + FORCE ROW LEVEL SECURITY, as the migrations leave them (apps/billing/rls.py);
    off: NO FORCE + DISABLE ROW LEVEL SECURITY (the application's role owns both tables), the
         baseline: the same tables, indexes, triggers and statements, the policy not applied.

(a) Writes: `apps.runs.usage.usage_record`, the platform's code path, on Django's connection in
    autocommit: one statement (its INSERT scopes itself with set_config in its source row) that
    writes the ledger row and grows the tenant's month totals (whole and per project), then
    `usage_written` (quota caps looked at, `usage_recorded` sent). --writers-tenants tenants in
    turn, a fresh run id per tenant per round and mode, steps 0..n-1, so no write conflicts. In
    --rounds rounds (after a shorter warm-up one) both modes write --writes records each, back to
    back, which goes first alternating; each write is timed on its own. Per mode: the median of
    the rounds' writes/s and p50/p99 of every write; the overhead is the median over the rounds
    of time-on / time-off of the round's pair, minus 1 (and the interquartile range of those).
    Each commit waits for its WAL flush, as the platform's do, and on a shared machine that wait
    jumps between regimes (here ~0.1 ms and ~3 ms) every few seconds: hence many short rounds,
    each pair back to back, and the median of the pairs. Then the same, --unflushed-rounds of
    them, with synchronous_commit off for the session: the statement's own cost, where the
    policy's share shows without the flush's noise (reported, not the target).
    Afterwards: every write is in the ledger once and counted once in billing_usage_month.
(b) Reads: `apps.billing.selectors.usage_summary` of one tenant's month (by agent and model) for
    every tenant in turn, --read-rounds interleaved rounds per mode, each call timed (it runs in
    `usage_scope`: its own transaction, the setting set and put back); p50/p99 and the ratio;
    both modes must answer the same. And the plan of its query (EXPLAIN in the tenant's scope)
    in both modes: with RLS on, the scan of billing_usage must use an index, not a sequential scan.

    bin/dev bench bench/usage.py [--rounds 12] [--writes 1000] [--unflushed-rounds 6] [--rows 200000]
                                 [--tenants 20] [--write-tenants 4] [--read-rounds 8]

Target: RLS on costs ≤ 10% more time per write than off (issue #8), and the month summary keeps
the tenant index with RLS on. Exits 1 if one is missed. Uses its own database,
foundry_bench_usage, dropped at the end. Takes ~1-2 minutes, depending on the flush regime.
"""

import argparse
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import bench_database, verdict

MAX_WRITE_OVERHEAD = 0.10
MODES = ("off", "on")
RLS_TABLES = ("billing_usage", "billing_usage_month")  # the two the write touches
PROVIDER, MODEL = "openai", "bench-4o"
PROJECTS = ("support", "research", "ops")
AGENTS = ("triage", "writer", "reviewer", "planner", "clerk")
LOAD_FROM = datetime(2026, 8, 1, tzinfo=UTC)  # the loaded rows: August to October 2026
LOAD_TO = datetime(2026, 11, 1, tzinfo=UTC)
MONTH = (datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC))  # the month summed in (b)

LOAD_SQL = (
    "INSERT INTO public.billing_usage (tenant_id, project, agent, run_id, step, provider, model, input_tokens,"
    " output_tokens, cached_tokens, latency_ms, created_at, cost_usd)"
    " SELECT (%(ids)s::bigint[])[1 + g %% cardinality(%(ids)s::bigint[])],"
    " (%(projects)s::text[])[1 + g %% 3], (%(agents)s::text[])[1 + (g / 7) %% 5], NULL, NULL, %(provider)s,"
    " CASE WHEN g %% 4 = 0 THEN 'bench-mini' ELSE %(model)s END, 1000 + g %% 500, 200 + g %% 100, g %% 50,"
    " 100 + g %% 900, %(start)s::timestamptz + (%(end)s::timestamptz - %(start)s::timestamptz) * (g::float8 / %(n)s),"
    " CASE WHEN g %% 10 = 0 THEN NULL ELSE (1000 + g %% 500) * 0.0000025 + (200 + g %% 100) * 0.00001 END"
    " FROM generate_series(0, %(n)s - 1) AS g"
)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


@dataclass
class Mode:
    name: str
    rates: list[float] = field(default_factory=list)  # writes/s of each round
    seconds: list[float] = field(default_factory=list)  # each round's wall time
    latencies: list[float] = field(default_factory=list)  # seconds, every write (or read)

    @property
    def label(self) -> str:
        return f"RLS {self.name}"


def rls_set(mode: str) -> None:
    """Put the two tables' Row-Level Security on (as migrated) or off, and check that it took
    (as the tables' owner: the app role, which writes, may not)."""
    from django.db import connection

    from foundry.db.roles import as_owner

    with as_owner(), connection.cursor() as cursor:
        for table in RLS_TABLES:
            if mode == "on":
                cursor.execute(
                    f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY; ALTER TABLE {table} FORCE ROW LEVEL SECURITY"
                )
            else:
                cursor.execute(
                    f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY; ALTER TABLE {table} DISABLE ROW LEVEL SECURITY"
                )
        cursor.execute(
            "SELECT bool_and(relrowsecurity AND relforcerowsecurity), bool_or(relrowsecurity OR relforcerowsecurity)"
            " FROM pg_class WHERE oid = ANY (%s::regclass[])",
            [list(RLS_TABLES)],
        )
        all_on, any_on = cursor.fetchone()
        cursor.execute("SELECT EXISTS (SELECT 1 FROM public.billing_usage)")  # no scope: the policy hides every row
        visible = cursor.fetchone()[0]
    if not ((all_on and not visible) if mode == "on" else (not any_on and visible)):
        sys.exit(f"Row-Level Security did not turn {mode}: all {all_on}, any {any_on}, unscoped rows visible {visible}")


def setup(tenants: int) -> list[int]:
    """The tenants (rows only: the ledger needs their ids, the quota check their plan) and a price."""
    from decimal import Decimal

    from apps.billing.models import Price
    from apps.tenants.models import Tenant

    Tenant.objects.bulk_create(
        Tenant(
            schema_name=f"bench_usage_{i:02d}",
            slug=f"bench-usage-{i:02d}",
            name=f"Bench usage {i}",
            plan=Tenant.Plan.TEAM,
            monthly_tokens_override=10**12,
        )
        for i in range(tenants)
    )
    Price.objects.create(
        provider=PROVIDER,
        model=MODEL,
        input_per_mtok=Decimal("2.5"),
        output_per_mtok=Decimal("10"),
        cached_per_mtok=Decimal("1.25"),
        effective_from=datetime(2020, 1, 1, tzinfo=UTC),
        created_by="bench",
    )
    return list(Tenant.objects.filter(slug__startswith="bench-usage-").order_by("pk").values_list("pk", flat=True))


def load(tenant_ids: list[int], rows: int) -> float:
    """`rows` ledger rows over every tenant and LOAD_FROM..LOAD_TO, in one statement; its seconds."""
    from django.db import connection

    from apps.billing.rls import usage_scope

    started = time.perf_counter()
    with usage_scope(*tenant_ids), connection.cursor() as cursor:
        params = {
            "ids": tenant_ids,
            "projects": list(PROJECTS),
            "agents": list(AGENTS),
            "provider": PROVIDER,
            "model": MODEL,
            "start": LOAD_FROM,
            "end": LOAD_TO,
            "n": rows,
        }
        cursor.execute(LOAD_SQL, params)
        if cursor.rowcount != rows:
            sys.exit(f"loaded {cursor.rowcount} rows, not {rows}")
    seconds = time.perf_counter() - started
    from foundry.db.roles import as_owner

    with as_owner(), connection.cursor() as cursor:  # only its owner may vacuum it
        cursor.execute("VACUUM ANALYZE public.billing_usage")
    return seconds


# --- (a) writes ---------------------------------------------------------------------------------


def write_round(mode: Mode, tenant_ids: list[int], n: int, runs: list) -> None:
    from apps.runs.usage import usage_record

    run_ids = [uuid.uuid4() for _ in tenant_ids]
    runs.extend(run_ids)
    latencies = []
    clock = time.perf_counter
    started = clock()
    for step in range(n):
        k = step % len(tenant_ids)
        before = clock()
        record = usage_record(
            tenant_id=tenant_ids[k],
            project=PROJECTS[step % 3],
            agent=AGENTS[step % 5],
            run_id=run_ids[k],
            step=step,
            provider=PROVIDER,
            model=MODEL,
            input_tokens=1000 + step % 500,
            output_tokens=200 + step % 100,
            cached_tokens=step % 50,
            latency_ms=250.0,
        )
        latencies.append(clock() - before)
        if record is None or record.cost_usd is None:
            sys.exit(f"write {step} of tenant {tenant_ids[k]} ({mode.label}) was not written or not priced")
    elapsed = clock() - started
    mode.latencies.extend(latencies)
    mode.seconds.append(elapsed)
    mode.rates.append(n / elapsed)


def writes(tenant_ids: list[int], rounds: int, n: int, *, flush: bool = True) -> tuple[dict[str, Mode], list, int]:
    """(a): every round both modes back to back; the modes, the run ids written and the writes.
    Without `flush`, the session's commits do not wait for the WAL flush (synchronous_commit off)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SET synchronous_commit = {'on' if flush else 'off'}")
    modes = {name: Mode(name) for name in MODES}
    runs: list = []
    warmup = {name: Mode(name) for name in MODES}
    for number in range(rounds + 1):  # round 0 warms up: plans, caches, the limits and budgets lookups
        order = MODES if number % 2 else MODES[::-1]
        for name in order:
            rls_set(name)
            write_round((modes if number else warmup)[name], tenant_ids, n if number else max(n // 4, 1), runs)
    rls_set("on")
    with connection.cursor() as cursor:
        cursor.execute("RESET synchronous_commit")
    written = sum(len(m.latencies) for m in (*modes.values(), *warmup.values()))
    return modes, runs, written


def writes_counted(tenant_ids: list[int], runs: list, written: int) -> str | None:
    """None if the ledger holds exactly the writes made and the month totals count each once."""
    from django.db import connection

    from apps.billing.rls import usage_scope

    with usage_scope(*tenant_ids), connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT (tenant_id, run_id, step)) FROM public.billing_usage"
            " WHERE run_id = ANY (%s::uuid[])",
            [runs],
        )
        rows, distinct = cursor.fetchone()
        cursor.execute(
            "SELECT coalesce(sum(calls) FILTER (WHERE project = ''), 0),"
            " coalesce(sum(calls) FILTER (WHERE project <> ''), 0) FROM public.billing_usage_month"
        )
        whole, projects = cursor.fetchone()
    if rows == distinct == whole == projects == written:
        return None
    return f"{written} writes made: {rows} ledger rows ({distinct} distinct), month totals {whole} / {projects} calls"


# --- (b) reads ----------------------------------------------------------------------------------


def summary(tenant_id: int) -> list[dict]:
    from apps.billing.selectors import usage_summary

    return usage_summary(tenant_id=tenant_id, start=MONTH[0], end=MONTH[1], by=("agent", "model"))


def reads(tenant_ids: list[int], rounds: int) -> tuple[dict[str, Mode], bool]:
    """(b): the month summary of every tenant, both modes per round; and whether they agree."""
    modes = {name: Mode(name) for name in MODES}
    answers: dict[str, dict[int, list]] = {name: {} for name in MODES}
    clock = time.perf_counter
    for number in range(rounds + 1):  # round 0 warms up
        order = MODES if number % 2 else MODES[::-1]
        for name in order:
            rls_set(name)
            for tenant_id in tenant_ids:
                before = clock()
                rows = summary(tenant_id)
                elapsed = clock() - before
                if number:
                    modes[name].latencies.append(elapsed)
                answers[name].setdefault(tenant_id, rows)
    rls_set("on")
    same = answers["on"] == answers["off"] and all(answers["on"].values())
    return modes, same


def plans(tenant_id: int) -> dict[str, list[str]]:
    """The scans of billing_usage in the summary's plan, per mode (EXPLAIN in the tenant's scope)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.billing.rls import usage_scope

    with CaptureQueriesContext(connection) as captured:
        summary(tenant_id)
    sql = next(q["sql"] for q in captured.captured_queries if "GROUP BY" in q["sql"])
    found: dict[str, list[str]] = {}
    for name in MODES:
        rls_set(name)
        with usage_scope(tenant_id), connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
            plan = cursor.fetchone()[0]
        if isinstance(plan, str):
            import json

            plan = json.loads(plan)
        scans: list[str] = []
        stack = [plan[0]["Plan"]]
        while stack:
            node = stack.pop()
            stack.extend(node.get("Plans", []))
            if node.get("Relation Name") == "billing_usage" or node.get("Index Name", "").startswith("billing_usage"):
                scans.append(node["Node Type"] + (f" ({node['Index Name']})" if node.get("Index Name") else ""))
        found[name] = scans
    rls_set("on")
    return found


# --- report -------------------------------------------------------------------------------------


def write_lines(label: str, modes: dict[str, Mode]) -> float:
    """Print one way of writing, both modes; return the median of the rounds' time on / time off."""
    off, on = modes["off"], modes["on"]
    ratios = [t_on / t_off for t_on, t_off in zip(on.seconds, off.seconds, strict=True)]
    ratio = statistics.median(ratios)
    q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    rate_ratio = statistics.median(on.rates) / statistics.median(off.rates)
    print(f"  {label}")
    for mode in (off, on):
        print(
            f"    {mode.label:<10} {statistics.median(mode.rates):>9,.0f} {quantile(mode.latencies, 0.5) * 1e6:>8.0f}"
            f" {quantile(mode.latencies, 0.99) * 1e6:>8.0f}"
        )
    print(
        f"    on/off time per write {ratio:.3f} (median of the rounds' pairs; IQR {q1:.3f}-{q3:.3f}): "
        f"overhead {(ratio - 1) * 100:+.1f}%; writes/s on/off {rate_ratio:.3f}, "
        f"p50 {quantile(on.latencies, 0.5) / quantile(off.latencies, 0.5):.3f}x, "
        f"p99 {quantile(on.latencies, 0.99) / quantile(off.latencies, 0.99):.3f}x"
    )
    return ratio


def report(args, context: dict, written: tuple, problem: str | None, read: dict[str, Mode], same, scans) -> bool:
    print(
        f"\nPostgreSQL {context['version']}, synchronous_commit={context['sync']}; {os.cpu_count()} CPUs, shared; "
        f"1-minute load average {context['loads'][0]:.1f} before, {context['loads'][1]:.1f} after (a), "
        f"{context['loads'][2]:.1f} after (b); {context['seconds']:.0f} s in all"
    )
    print(
        f"Ledger: {args.rows:,} rows of {args.tenants} tenants loaded in {context['load']:.1f} s "
        f"(one INSERT ... SELECT in their scope, RLS on)"
    )
    print(
        f"\n(a) Writes: usage_record in autocommit (1 statement: ledger row + 2 month totals), {args.write_tenants} "
        f"tenants, {args.rounds} interleaved rounds of {args.writes:,} writes per mode"
    )
    print(f"    {'mode':<10} {'writes/s':>9} {'p50 µs':>8} {'p99 µs':>8}")
    ratio = write_lines("as the platform commits (each write waits for its WAL flush): the target", written[0])
    write_lines(
        f"synchronous_commit off for the session (no flush wait: the statement's own cost), "
        f"{args.unflushed_rounds} rounds",
        written[1],
    )
    print(f"  every write in the ledger once and counted once in the month totals: {problem or 'yes'}")

    r_off, r_on = read["off"], read["on"]
    per_tenant = args.rows / args.tenants / 3
    print(
        f"\n(b) Reads: usage_summary of one tenant's month by agent and model (~{per_tenant:,.0f} of its rows, "
        f"{args.rows:,} in the ledger), {args.tenants} tenants x {args.read_rounds} interleaved rounds per mode"
    )
    print(f"  {'mode':<10} {'p50 ms':>8} {'p99 ms':>8}")
    for mode in (r_off, r_on):
        print(
            f"  {mode.label:<10} {quantile(mode.latencies, 0.5) * 1e3:>8.2f}"
            f" {quantile(mode.latencies, 0.99) * 1e3:>8.2f}"
        )
    print(
        f"  on/off p50 {quantile(r_on.latencies, 0.5) / quantile(r_off.latencies, 0.5):.3f}x, "
        f"p99 {quantile(r_on.latencies, 0.99) / quantile(r_off.latencies, 0.99):.3f}x; same answers both ways: "
        f"{'yes' if same else 'NO'}"
    )
    for name in MODES:
        print(f"  plan, RLS {name}: {', '.join(scans[name]) or 'no scan of billing_usage found'}")

    print("\nTargets")
    ok = verdict(
        f"RLS on costs ≤ {MAX_WRITE_OVERHEAD:.0%} more time per write than off ({(ratio - 1) * 100:+.1f}%)",
        ratio - 1 <= MAX_WRITE_OVERHEAD,
    )
    ok &= verdict("every write recorded once, month totals exact", problem is None)
    on_scans = scans["on"]
    ok &= verdict(
        "the month summary keeps the tenant index with RLS on "
        f"({', '.join(on_scans) or 'no scan found'}), answering as with RLS off",
        bool(on_scans) and not any(scan.startswith("Seq Scan") for scan in on_scans) and same,
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=12, help="interleaved write rounds after the warm-up one")
    parser.add_argument("--unflushed-rounds", type=int, default=6, help="the same, synchronous_commit off")
    parser.add_argument("--writes", type=int, default=1000, help="writes per mode per round")
    parser.add_argument("--rows", type=int, default=200_000, help="ledger rows loaded before measuring")
    parser.add_argument("--tenants", type=int, default=20, help="tenants the rows are spread over")
    parser.add_argument("--write-tenants", type=int, default=4, help="tenants the writes go to, in turn")
    parser.add_argument("--read-rounds", type=int, default=8, help="interleaved read rounds after the warm-up one")
    args = parser.parse_args()
    if min(args.rounds, args.unflushed_rounds) < 2 or not 1 <= args.write_tenants <= args.tenants:
        parser.error("--rounds, --unflushed-rounds ≥ 2 and 1 ≤ --write-tenants ≤ --tenants")

    started = time.monotonic()
    with bench_database("foundry_bench_usage") as env:
        os.environ.update({**env, "DJANGO_SETTINGS_MODULE": "foundry.settings"})
        import django

        django.setup()
        from django.db import connection, connections

        try:
            tenant_ids = setup(args.tenants)
            load_seconds = load(tenant_ids, args.rows)
            with connection.cursor() as cursor:
                cursor.execute("SHOW server_version")
                version = cursor.fetchone()[0]
                cursor.execute("SHOW synchronous_commit")
                sync = cursor.fetchone()[0]
            loads = [os.getloadavg()[0]]
            writers = tenant_ids[: args.write_tenants]
            written, runs, count = writes(writers, args.rounds, args.writes)
            unflushed, more_runs, more = writes(writers, args.unflushed_rounds, args.writes, flush=False)
            problem = writes_counted(writers, runs + more_runs, count + more)
            loads.append(os.getloadavg()[0])
            read, same = reads(tenant_ids, args.read_rounds)
            scans = plans(tenant_ids[0])
            loads.append(os.getloadavg()[0])
        finally:
            connections.close_all()
    context = {
        "version": version.split()[0],
        "sync": sync,
        "loads": loads,
        "load": load_seconds,
        "seconds": time.monotonic() - started,
    }
    return 0 if report(args, context, (written, unflushed), problem, read, same, scans) else 1


if __name__ == "__main__":
    sys.exit(main())
