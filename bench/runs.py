"""What running an agent on the platform costs: per step, per run end to end, and in checkpoint storage.

Creates its own database with one tenant, publishes the finance domain and a scripted agent with
two `dis_query` tools (no network anywhere), then measures in one run:

(a) Platform overhead per step, for a 5-step run (model → tool → model → tool → model), in
    interleaved rounds (medians), each line building the agent's graph and running it to the end:
    - LangGraph's InMemorySaver, no hooks (the baseline);
    - LangGraph's PostgresSaver as its documentation sets it up (autocommit, prepared statements,
      tables of its own), no hooks: the reference the issue's 0.92 ms/step was measured with, to
      tell how busy the machine and its PostgreSQL are;
    - the same graph on the bare TenantSaver (PostgresSaver in the tenant's schema), no hooks;
    - the platform: `run_advance` of a queued run, as a worker calls it — the run's Redis lock,
      the TenantSaver, a Step row per step, a usage record per model call, the run's counters,
      status and outcome.
    TenantSaver - in-memory is what checkpointing costs; platform - TenantSaver is the bookkeeping.
(b) Runs completed per second end to end: --runs runs started with `run_start` (each commits and
    is enqueued on its own, as the API does) on a queue of the benchmark's own, through Redis to
    one Celery worker (`--pool prefork --concurrency 2`: two processes running tasks) on this
    machine, from the first enqueue to the last run finished; latency is created → finished.
(c) Checkpoint storage of a 201-step run (--long-calls tool calls, then an answer): the bytes of
    that thread's rows in the tenant's checkpoints, checkpoint_blobs and checkpoint_writes (every
    column, uncompressed) per step, against the same conversation in the same graph whose state
    holds plain lists (`Annotated[list, add_messages]`, as LangGraph's tutorials have it) on the
    same saver; how much of each is whole copies of the lists; and the bytes of the first vs the
    last 50 steps.

    bin/dev bench bench/runs.py [--rounds 15] [--batch 4] [--runs 200] [--long-calls 100]

Targets: platform overhead ≤ 2 ms per step, judged as the issue set it: beside LangGraph's
PostgresSaver adding 0.92 ms per step, so ≤ 2 / 0.92 = 2.17x what PostgresSaver adds over the
in-memory saver for the same graph in the same run (on this machine PostgresSaver alone adds
1.7-2.7 ms per step, so the absolute 2 ms would ask the platform's bookkeeping to cost less than
nothing; the absolute figure is printed beside it); ≥ 20 runs/s end to end; ≤ 50 KB of
checkpoints per step for the 201-step run. Exits 1 if one is missed. Uses its own database, foundry_bench_runs,
dropped at the end, and its own Celery queue on the Redis the environment names. Takes ~30-60 s.
"""

import argparse
import operator
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

from bench._support import ROOT, bench_database, verdict

SLUG = "bench"
OWNER = "owner@bench.test"
AGENT = "bench-clerk"
FINANCE = ROOT / "examples" / "domains" / "finance.yaml"
AGENT_YAML = f"""apiVersion: foundry/v1
kind: Agent
metadata:
  name: {AGENT}
  project: benchmarks
spec:
  domain: {{name: finance, version: 1}}
  model: {{provider: scripted, name: scripted-1}}
  instructions: Look invoices and vendors up and say what applies.
  tools:
    - name: find_invoices
      type: dis_query
      entity: invoice
      description: Describe invoices in the finance domain.
    - name: find_vendors
      type: dis_query
      entity: vendor
      description: Describe vendors in the finance domain.
  limits:
    max_steps: 1000
    max_tokens: 10000000
    timeout_seconds: 3600
"""
INPUT = "Which rules apply to invoice INV-1001 and its vendor?"
SCRIPT = [
    {"tool_call": {"tool": "find_invoices", "arguments": {"question": "Which rules apply to invoices?"}}},
    {"tool_call": {"tool": "find_vendors", "arguments": {"question": "Which rules apply to vendors?"}}},
    {"respond": "Invoices above 10,000 need an approver; high-risk vendors are paid by treasury."},
]
STEPS = 5  # model, tool, model, tool, model
MAX_OVERHEAD_MS = 2.0
ISSUE_REFERENCE_MS = 0.92  # what the issue measured PostgresSaver adding per step over the in-memory saver
MIN_RUNS_PER_SECOND = 20.0
MAX_BYTES_PER_STEP = 50 * 1024
GROWTH_WINDOW = 50  # steps compared at the start and the end of the long run


def long_script(calls: int) -> list[dict]:
    tools = ("find_invoices", "find_vendors")
    script = [
        {"tool_call": {"tool": tools[n % 2], "arguments": {"question": f"What applies to record {n}?"}}}
        for n in range(calls)
    ]
    return [*script, {"respond": f"Looked {calls} records up."}]


# --- setup ------------------------------------------------------------------------------------


@dataclass
class Bench:
    schema: str
    owner: object
    agent: object  # catalog Document
    manifest: dict
    domain: dict


def setup() -> Bench:
    from django_tenants.utils import schema_context

    from apps.accounts.models import User
    from apps.catalog.services import agent_deploy, version_publish
    from apps.tenants.services import tenant_provision

    # Enterprise: no monthly token quota (the 201-step run alone spends more than the free plan's).
    tenant = tenant_provision(slug=SLUG, name="Bench", owner_email=OWNER, plan="enterprise").tenant
    with schema_context(tenant.schema_name):
        owner = User.objects.get(email=OWNER)
        version_publish(actor=owner, source=FINANCE.read_text(), message="bench")
        version = version_publish(actor=owner, source=AGENT_YAML, message="bench").version
        agent_deploy(actor=owner, document=version.document, number=version.number)
        agent = version.document
        agent.refresh_from_db()
        deployment = agent.live
        return Bench(tenant.schema_name, owner, agent, deployment.version.content, deployment.domain_version.content)


# --- (a) overhead per step ----------------------------------------------------------------------


@contextmanager
def reference_saver() -> Iterator[object]:
    """LangGraph's PostgresSaver as its documentation sets it up (autocommit, prepared statements),
    on tables of its own in this database (schema langgraph_reference): the issue's 0.92 ms/step."""
    import psycopg
    from django.db import connection
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA IF NOT EXISTS langgraph_reference")
    conn = psycopg.connect(
        os.environ["DATABASE_URL"],
        autocommit=True,
        prepare_threshold=0,
        row_factory=dict_row,
        options="-c search_path=langgraph_reference",
    )
    try:
        saver = PostgresSaver(conn)
        saver.setup()
        yield saver
    finally:
        conn.close()


def overhead(bench: Bench, rounds: int, batch: int) -> dict[str, float]:
    """Median seconds per 5-step run of each way of running it, `batch` runs per round, interleaved."""
    from django_tenants.utils import schema_context
    from langgraph.checkpoint.memory import InMemorySaver

    from apps.runs.checkpoints import checkpointer
    from apps.runs.engine import run_advance
    from apps.runs.models import Run
    from apps.runs.services import run_create
    from foundry.runtime import AgentGraph
    from foundry.runtime.providers import ScriptedProvider

    def graph(saver) -> AgentGraph:
        provider = ScriptedProvider(SCRIPT, model="scripted-1")
        return AgentGraph(bench.manifest, bench.domain, provider=provider, checkpointer=saver)

    def on(make_saver: Callable[[], object], what: str) -> Callable[[], Callable[[], None]]:
        def prepare() -> Callable[[], None]:
            def work() -> None:
                result = graph(make_saver()).start(str(uuid.uuid4()), INPUT)
                if (result.status, len(result.steps)) != ("succeeded", STEPS):
                    sys.exit(f"{what}: the run ended {result.status} after {len(result.steps)} steps, not {STEPS}")

            return work

        return prepare

    def platform() -> Callable[[], None]:
        run = run_create(agent=bench.agent, input=INPUT, created_by="bench", script=SCRIPT)  # not timed

        def work() -> None:
            status = run_advance(run.pk)
            if status != "succeeded":
                sys.exit(f"run_advance: the run ended {status}")

        return work

    times: dict[str, list[float]] = {}
    with schema_context(bench.schema), reference_saver() as reference:
        ways = {
            "in-memory": on(InMemorySaver, "in-memory"),
            "PostgresSaver": on(lambda: reference, "PostgresSaver"),
            "TenantSaver": on(lambda: checkpointer(bench.schema), "TenantSaver"),
            "platform": platform,
            "graph build": lambda: lambda: graph(InMemorySaver()),
        }
        for number in range(rounds + 1):  # round 0 warms up (imports, connections, caches)
            order = list(ways.items())
            order = order[number % len(order) :] + order[: number % len(order)]
            for name, prepare in order:
                works = [prepare() for _ in range(batch)]
                started = time.perf_counter()
                for work in works:
                    work()
                if number:
                    times.setdefault(name, []).append((time.perf_counter() - started) / batch)
        steps = set(Run.objects.values_list("step_count", flat=True))
        if steps != {STEPS}:
            sys.exit(f"run_advance: runs did not all end after {STEPS} steps: {sorted(steps)}")
    return {name: statistics.median(values) for name, values in times.items()}


def queries_per_run(bench: Bench) -> tuple[int, int]:
    """(Django queries, checkpoint saver transactions) of one platform run."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django_tenants.utils import schema_context

    from apps.runs.checkpoints import TenantSaver
    from apps.runs.engine import run_advance
    from apps.runs.services import run_create

    transactions = 0
    original = TenantSaver._cursor

    @contextmanager
    def counted(self, *, pipeline: bool = False):
        nonlocal transactions
        transactions += 1
        with original(self, pipeline=pipeline) as cur:
            yield cur

    with schema_context(bench.schema):
        run = run_create(agent=bench.agent, input=INPUT, created_by="bench", script=SCRIPT)
        TenantSaver._cursor = counted
        try:
            with CaptureQueriesContext(connection) as queries:
                run_advance(run.pk)
        finally:
            TenantSaver._cursor = original
    return len(queries.captured_queries), transactions


# --- (b) runs per second through Celery ---------------------------------------------------------


@contextmanager
def worker(env: dict[str, str], queue: str, concurrency: int) -> Iterator[subprocess.Popen]:
    """A Celery worker (prefork) consuming `queue`, in its own process group, until the block ends."""
    from foundry.celery import app

    hostname = f"bench-runs-{uuid.uuid4().hex[:8]}@localhost"
    command = [sys.executable, "-m", "celery", "-A", "foundry", "worker", "--pool", "prefork"]
    command += ["--concurrency", str(concurrency), "-Q", queue, "--hostname", hostname, "--loglevel", "WARNING"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 60
            while not app.control.ping(destination=[hostname], timeout=0.5):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    sys.exit(f"the Celery worker did not start:\n{log.read().decode(errors='replace')[-3000:]}")
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


@dataclass
class Throughput:
    runs: int
    seconds: float
    enqueue_seconds: float
    latency: list[float]  # created → finished, seconds
    execution: list[float]  # started → finished, seconds

    @property
    def per_second(self) -> float:
        return self.runs / self.seconds


def _start_runs(bench: Bench, n: int) -> list:
    from apps.runs.services import run_start

    return [run_start(actor=bench.owner, agent=bench.agent, input=INPUT, script=SCRIPT).pk for _ in range(n)]


def _finished(ids: list, timeout: float) -> list:
    from apps.runs.models import Run

    deadline = time.monotonic() + timeout
    while Run.objects.filter(pk__in=ids, finished_at__isnull=True).exists():
        if time.monotonic() > deadline:
            left = Run.objects.filter(pk__in=ids, finished_at__isnull=True).count()
            sys.exit(f"{left} of {len(ids)} runs were not finished after {timeout:.0f} s")
        time.sleep(0.1)
    runs = list(Run.objects.filter(pk__in=ids))
    failed = [run for run in runs if run.status != Run.Status.SUCCEEDED]
    if failed:
        sys.exit(f"{len(failed)} runs did not succeed, e.g. {failed[0].status}: {failed[0].reason} {failed[0].message}")
    return runs


def throughput(bench: Bench, env: dict[str, str], queue: str, n: int, concurrency: int) -> Throughput:
    from django_tenants.utils import schema_context

    with worker(env, queue, concurrency), schema_context(bench.schema):
        _finished(_start_runs(bench, 2 * concurrency), timeout=60)  # warm up every pool process
        first_enqueue = time.time()
        ids = _start_runs(bench, n)
        enqueued = time.time() - first_enqueue
        runs = _finished(ids, timeout=max(60.0, n / 2))
    last = max(run.finished_at.timestamp() for run in runs)
    return Throughput(
        runs=n,
        seconds=last - first_enqueue,
        enqueue_seconds=enqueued,
        latency=[(run.finished_at - run.created_at).total_seconds() for run in runs],
        execution=[(run.finished_at - run.started_at).total_seconds() for run in runs],
    )


# --- (c) checkpoint storage ---------------------------------------------------------------------

# Bytes of a thread's checkpoint rows, every column uncompressed, each row with the super-step it
# belongs to: a checkpoint's own step, a write's checkpoint's step, and a blob's channel version
# (LangGraph numbers versions from one counter that moves once per super-step).
SIZE_SQL = """
SELECT 'checkpoints', (metadata->>'step')::int,
       octet_length(thread_id) + octet_length(checkpoint_ns) + octet_length(checkpoint_id)
       + coalesce(octet_length(parent_checkpoint_id), 0) + coalesce(octet_length(type), 0)
       + octet_length(checkpoint::text) + octet_length(metadata::text)
  FROM checkpoints WHERE thread_id = %(thread)s
UNION ALL
SELECT CASE WHEN channel IN ('messages', 'steps') AND blob IS NOT NULL THEN 'list copies' ELSE 'checkpoint_blobs' END,
       split_part(version, '.', 1)::int,
       octet_length(thread_id) + octet_length(checkpoint_ns) + octet_length(channel) + octet_length(version)
       + octet_length(type) + coalesce(octet_length(blob), 0)
  FROM checkpoint_blobs WHERE thread_id = %(thread)s
UNION ALL
SELECT 'checkpoint_writes', (c.metadata->>'step')::int,
       octet_length(w.thread_id) + octet_length(w.checkpoint_ns) + octet_length(w.checkpoint_id)
       + octet_length(w.task_id) + 4 + octet_length(w.channel) + coalesce(octet_length(w.type), 0)
       + octet_length(w.blob) + octet_length(w.task_path)
  FROM checkpoint_writes w JOIN checkpoints c USING (thread_id, checkpoint_ns, checkpoint_id)
 WHERE w.thread_id = %(thread)s
"""


@dataclass
class Storage:
    steps: int
    tables: dict[str, int]  # bytes per table
    first: int  # bytes of the first GROWTH_WINDOW super-steps
    last: int  # bytes of the last GROWTH_WINDOW super-steps
    copies: int  # blobs holding a whole messages or steps list (a delta channel's snapshots)
    copies_bytes: int

    @property
    def total(self) -> int:
        return sum(self.tables.values())

    @property
    def per_step(self) -> float:
        return self.total / self.steps


def storage_of(thread: str, steps: int) -> Storage:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(SIZE_SQL, {"thread": thread})
        rows = cursor.fetchall()
    tables = {"checkpoints": 0, "checkpoint_blobs": 0, "checkpoint_writes": 0}
    by_step: dict[int, int] = {}
    copies = copies_bytes = 0
    for table, step, size in rows:
        if table == "list copies":
            table, copies, copies_bytes = "checkpoint_blobs", copies + 1, copies_bytes + size
        tables[table] += size
        by_step[step] = by_step.get(step, 0) + size
    ordered = [by_step[step] for step in sorted(by_step)]
    first, last = sum(ordered[:GROWTH_WINDOW]), sum(ordered[-GROWTH_WINDOW:])
    return Storage(steps, tables, first, last, copies, copies_bytes)


class PlainAgentState(TypedDict, total=False):
    """AgentState with the usual plain-list channels: each checkpoint stores the whole lists."""

    messages: Annotated[list[AnyMessage], add_messages]
    steps: Annotated[list[dict], operator.add]
    step_count: int
    input_tokens: int
    output_tokens: int
    elapsed_ms: float
    outcome: dict | None


def plain_graph(manifest: dict, domain: dict, *, provider, checkpointer):
    """The platform's AgentGraph with PlainAgentState: the same nodes, edges and steps."""
    from foundry.runtime import AgentGraph

    class PlainAgentGraph(AgentGraph):
        state_schema = PlainAgentState

    return PlainAgentGraph(manifest, domain, provider=provider, checkpointer=checkpointer)


def storage(bench: Bench, calls: int) -> tuple[Storage, Storage, float]:
    """(the platform run's storage, the plain-state baseline's, seconds the platform run took)."""
    from django_tenants.utils import schema_context

    from apps.runs.checkpoints import checkpointer
    from apps.runs.engine import run_advance
    from apps.runs.services import run_create
    from foundry.runtime.providers import ScriptedProvider

    script = long_script(calls)
    steps = 2 * calls + 1
    with schema_context(bench.schema):
        run = run_create(agent=bench.agent, input=INPUT, created_by="bench", script=script)
        started = time.perf_counter()
        run_advance(run.pk)
        seconds = time.perf_counter() - started
        run.refresh_from_db()
        if (run.status, run.step_count) != ("succeeded", steps):
            sys.exit(f"the long run ended {run.status} ({run.reason}) after {run.step_count} steps, not {steps}")
        delta = storage_of(str(run.pk), steps)

        plain = plain_graph(
            bench.manifest,
            bench.domain,
            provider=ScriptedProvider(script, model="scripted-1"),
            checkpointer=checkpointer(bench.schema),
        )
        thread = f"plain-{uuid.uuid4()}"
        result = plain.start(thread, INPUT)
        if (result.status, len(result.steps)) != ("succeeded", steps):
            sys.exit(f"the plain-state run ended {result.status} after {len(result.steps)} steps, not {steps}")
        baseline = storage_of(thread, steps)
    return delta, baseline, seconds


# --- report -------------------------------------------------------------------------------------


def _kb(n: float) -> str:
    return f"{n / 1024:,.1f} KB"


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report_overhead(
    costs: dict[str, float], queries: int, transactions: int, rounds: int, batch: int
) -> tuple[float, float]:
    """Print (a); the platform's overhead in ms per step, and as a multiple of what PostgresSaver adds."""

    def row(label: str, seconds: float) -> None:
        print(f"  {label:<62}{seconds * 1000 / STEPS:>7.2f} ms/step{seconds * 1000:>8.2f} ms/run")

    def per_step(seconds: float) -> float:
        return seconds * 1000 / STEPS

    memory, reference, saver, platform = (costs[k] for k in ("in-memory", "PostgresSaver", "TenantSaver", "platform"))
    print(
        f"\n(a) A {STEPS}-step scripted run (model, tool, model, tool, model; dis_query tools): median of "
        f"{rounds} interleaved rounds of {batch} runs; each line builds the graph and runs it to the end"
    )
    row("LangGraph InMemorySaver, no hooks (baseline)", memory)
    row("LangGraph PostgresSaver as documented, no hooks (reference)", reference)
    row("bare TenantSaver, no hooks", saver)
    row("platform: run_advance (lock, TenantSaver, Step, usage, run)", platform)
    row("  building the graph (AgentGraph(...)), in every line", costs["graph build"])
    for label, seconds in (
        (f"PostgresSaver - in-memory (the issue measured {ISSUE_REFERENCE_MS} ms/step)", reference - memory),
        ("checkpointing: TenantSaver - in-memory", saver - memory),
        ("bookkeeping: platform - TenantSaver", platform - saver),
        ("platform overhead: platform - in-memory", platform - memory),
    ):
        print(f"  {label:<62}{per_step(seconds):>7.2f} ms/step")
    print(f"  platform / in-memory: {platform / memory:.2f}x   TenantSaver / in-memory: {saver / memory:.2f}x")
    # The issue's 2 ms was set beside its 0.92 ms for PostgresSaver: as a ratio, the platform's overhead may
    # be 2.17x what PostgresSaver adds, the target judged below (the machine's speed cancels out).
    scale = MAX_OVERHEAD_MS / ISSUE_REFERENCE_MS
    ratio = (platform - memory) / (reference - memory)
    here = per_step(reference - memory) * scale
    issue = f"{MAX_OVERHEAD_MS:g} ms / {ISSUE_REFERENCE_MS} ms = {scale:.2f}x"
    print(
        f"  platform overhead / PostgresSaver's: {ratio:.2f}x (the issue's {issue}; on this machine {here:.2f} ms/step)"
    )
    print(f"  one platform run: {queries} statements on Django's connection, {transactions} TenantSaver transactions")
    return per_step(platform - memory), ratio


def report_throughput(flow: Throughput, concurrency: int) -> None:
    print(
        f"\n(b) {flow.runs} runs started with run_start (each commits and enqueues) → Redis → one Celery worker, "
        f"prefork, --concurrency {concurrency} ({os.cpu_count()} CPUs)"
    )
    print(f"  first enqueue → last run finished: {flow.seconds:.2f} s (enqueueing took {flow.enqueue_seconds:.2f} s)")
    print(f"  runs completed per second: {flow.per_second:.1f}")
    print(
        f"  latency created → finished: p50 {_p(flow.latency, 50) * 1000:.0f} ms, "
        f"p95 {_p(flow.latency, 95) * 1000:.0f} ms (mostly queueing: all {flow.runs} arrive at once)"
    )
    print(
        f"  started → finished, in the worker: p50 {_p(flow.execution, 50) * 1000:.1f} ms, "
        f"p95 {_p(flow.execution, 95) * 1000:.1f} ms"
    )


def report_storage(delta: Storage, baseline: Storage, calls: int, seconds: float) -> None:
    print(
        f"\n(c) Checkpoints of one {delta.steps}-step run ({calls} tool calls, then an answer): bytes of the "
        "thread's rows, uncompressed"
    )
    print(f"  {'state':<38}{'checkpoints':>12}{'blobs':>13}{'writes':>11}{'total':>13}{'per step':>11}")
    rows = (("platform (delta channels)", delta), ("baseline: plain lists (add_messages)", baseline))
    for label, s in rows:
        t = s.tables
        print(
            f"  {label:<38}{_kb(t['checkpoints']):>12}{_kb(t['checkpoint_blobs']):>13}"
            f"{_kb(t['checkpoint_writes']):>11}{_kb(s.total):>13}{_kb(s.per_step):>11}"
        )
    print(f"  baseline / platform: {baseline.total / delta.total:.1f}x")
    for label, s in rows:
        rest = (s.total - s.copies_bytes) / s.steps
        print(
            f"  {label}: {s.copies} whole copies of the message/step lists ({_kb(s.copies_bytes)}), "
            f"{_kb(rest)} per step besides"
        )
        print(
            f"    first {GROWTH_WINDOW} steps {_kb(s.first)}, last {GROWTH_WINDOW} steps {_kb(s.last)} "
            f"({s.last / s.first:.1f}x)"
        )
    print(f"  (delta channels snapshot a list every 100 updates; the platform run took {seconds:.1f} s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds for the overhead (a)")
    parser.add_argument("--batch", type=int, default=4, help="runs of each kind per round (a)")
    parser.add_argument("--runs", type=int, default=200, help="runs through the Celery worker (b)")
    parser.add_argument("--concurrency", type=int, default=2, help="the worker's pool processes (b)")
    parser.add_argument("--long-calls", type=int, default=100, help="tool calls in the long run (c): 2n+1 steps")
    args = parser.parse_args()

    queue = f"bench-runs-{uuid.uuid4().hex[:8]}"
    with bench_database("foundry_bench_runs") as env:
        env = {**env, "FOUNDRY_RUNS_QUEUE": queue, "DJANGO_SETTINGS_MODULE": "foundry.settings"}
        os.environ.update(env)
        import django

        django.setup()
        from django.db import connections

        from apps.runs.checkpoints import checkpoint_connection_close

        try:
            bench = setup()
            costs = overhead(bench, args.rounds, args.batch)
            queries, transactions = queries_per_run(bench)
            delta, baseline, long_seconds = storage(bench, args.long_calls)
            flow = throughput(bench, env, queue, args.runs, args.concurrency)
        finally:
            checkpoint_connection_close()
            connections.close_all()

    overhead_ms, overhead_ratio = report_overhead(costs, queries, transactions, args.rounds, args.batch)
    report_throughput(flow, args.concurrency)
    report_storage(delta, baseline, args.long_calls, long_seconds)
    print("\nTargets")
    scale = MAX_OVERHEAD_MS / ISSUE_REFERENCE_MS
    ok = verdict(
        f"platform overhead ≤ {MAX_OVERHEAD_MS:g} ms per step where PostgresSaver adds {ISSUE_REFERENCE_MS} ms: "
        f"≤ {scale:.2f}x what it adds in this run ({overhead_ratio:.2f}x; {overhead_ms:.2f} ms per step here)",
        overhead_ratio <= scale,
    )
    ok &= verdict(
        f"≥ {MIN_RUNS_PER_SECOND:g} runs/s end to end ({flow.per_second:.1f})", flow.per_second >= MIN_RUNS_PER_SECOND
    )
    ok &= verdict(
        f"checkpoints ≤ {_kb(MAX_BYTES_PER_STEP)} per step over {delta.steps} steps ({_kb(delta.per_step)})",
        delta.per_step <= MAX_BYTES_PER_STEP,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
