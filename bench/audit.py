"""How fast the chained audit trail appends and verifies, against plain inserts and bare hashing.

Creates its own database and in it, beside the trail's tables, `bench_plain_event`: the same
columns and indexes as `audit_auditevent`, but no chain, no triggers, no Row-Level Security.
Then measures in one run:

(a) Appends per second. Every writer is a process of its own with its own psycopg connection in
    autocommit, one event per transaction (as a web request records one):
    - chained: `SELECT seq, hash FROM public.audit_append(...)`, the one call `audit_record` makes;
    - plain (the baseline): `INSERT INTO bench_plain_event ... RETURNING seq, hash` of the same row;
    - floor: `bench_floor_append`, audit_append with its chain taken out (the tenant setting and the
      INSERT into the events table under its forced Row-Level Security, seq from a sequence, no lock,
      head or hash): the most any append through this interface can keep of plain, printed beside;
    with 1 process on one chain, --processes on ONE chain, and --processes on as many chains.
    Many short rounds: in each, every line runs each kind for --seconds, back to back (which
    goes first rotates), because a commit's WAL flush is most of an append and
    its latency drifts within seconds on a shared machine and disk; the ratio of each round's
    pair is taken, and the median of those is the figure (with the median rates and the
    interquartile range of the ratios). While a line runs, the writers' backends are sampled in
    pg_stat_activity: where their time goes (the chain's lock, the WAL, the CPU...). Afterwards
    every chain written is verified (audit_verify): intact and gap-free.
(b) Verification. Builds a chain of --events events server-side with one INSERT ... SELECT whose
    recursive CTE hashes each event, its previous hash the row before's, with `bench_event_hash`:
    the trail's `audit_event_hash` word for word (pg_get_functiondef) but declared STABLE, which
    lets the planner inline it (~3x faster; the same bytes, which audit_verify then proves).
    Vacuums, then times `apps.audit.verify.audit_verify` on it, beside the baselines:
    hashlib.sha256 over the same canonical payloads held in memory, and `chain.event_hash`
    (canonical form + hashing) over the same rows, on a --sample of them.

    bin/dev bench bench/audit.py [--rounds 20] [--seconds 0.5] [--processes 4]
                                 [--events 1000000] [--sample 200000] [--verify-rounds 2]

Targets: chained / plain ≥ 0.8x with --processes on as many chains, ≥ 0.4x with --processes on
one chain; 1,000,000 events verified in < 30 s (projected from events/s when --events is
smaller). Exits 1 if one is missed. Uses its own database, foundry_bench_audit, dropped at the
end. Takes ~3-3.5 minutes with the defaults (building the 1,000,000-event chain: ~20-40 s).
"""

import argparse
import hashlib
import multiprocessing
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench._support import bench_database, owner_url, verdict

MIN_SEPARATE_RATIO = 0.8
MIN_SHARED_RATIO = 0.4
MAX_VERIFY_SECONDS = 30.0
TARGET_EVENTS = 1_000_000
WRITER = "bench_audit_writer"  # application_name of the writers' connections
SAMPLE_EVERY = 0.02  # seconds between pg_stat_activity samples
BUILT_CHAIN = 900  # the chain (b) builds; (a) writes chains 101, 201, 301...

# One event's fields, shared by the writers (a) and the built chain (b), so both have one width.
ACTOR_TYPE = "user"
ACTION = "manifest.deploy"
TARGET_TYPE = "catalog.document"
OUTCOME = "success"
IP = "203.0.113.17"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
FAKE_HASH = "f" * 64  # the plain rows' prev_hash and hash: the width, not the work

APPEND_SQL = "SELECT seq, hash FROM public.audit_append(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
PLAIN_SQL = (
    "INSERT INTO bench_plain_event (tenant_id, seq, occurred_at, actor_type, actor_id, action, target_type,"
    " target_id, outcome, ip, user_agent, request_id, details, prev_hash, hash)"
    " VALUES (%s, nextval('bench_plain_seq'), clock_timestamp(), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " RETURNING seq, hash"
)
PLAIN_TABLE_SQL = (
    "CREATE TABLE bench_plain_event (LIKE public.audit_auditevent INCLUDING ALL);"  # no triggers, no policies
    " CREATE SEQUENCE bench_plain_seq"
)
FLOOR_SQL = APPEND_SQL.replace("public.audit_append(", "public.bench_floor_append(")
# audit_append with its chain taken out: its tenant setting (set, then restored) and its INSERT
# under the events table's forced Row-Level Security stay, as the function has them; seq comes from
# a sequence and the hashes are FAKE_HASH. What an append through this interface and table pays
# before any chain.
FLOOR_FUNCTION_SQL = f"""
CREATE FUNCTION public.bench_floor_append(p_tenant bigint, p_actor_type text, p_actor_id text, p_action text,
    p_target_type text, p_target_id text, p_outcome text, p_ip text, p_user_agent text, p_request_id text,
    p_details text, p_actor_name text, p_actor_email text) RETURNS public.audit_appended LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    previous_tenant text := pg_catalog.current_setting('foundry.tenant_id', true);
    setting text;
    appended public.audit_appended;
BEGIN
    setting := pg_catalog.set_config('foundry.tenant_id', p_tenant::text, true);
    INSERT INTO public.audit_auditevent AS e (tenant_id, seq, occurred_at, actor_type, actor_id, action,
        target_type, target_id, outcome, ip, user_agent, request_id, details, prev_hash, hash)
        VALUES (p_tenant, nextval('bench_plain_seq'), pg_catalog.clock_timestamp(), p_actor_type, p_actor_id,
                p_action, p_target_type, p_target_id, p_outcome, p_ip, p_user_agent, p_request_id, p_details,
                '{FAKE_HASH}', '{FAKE_HASH}')
    RETURNING e.seq, e.hash, e.occurred_at INTO appended;
    setting := pg_catalog.set_config('foundry.tenant_id', coalesce(previous_tenant, ''), true);
    RETURN appended;
END
$$
"""
FLOOR_CHAINS = 50  # the floor's rows go to chain + 50 (151, 251, 351...): never a chain (a) verifies
KINDS = {  # kind → (statement, its last two parameters, what is added to the line's chain ids)
    "chained": (APPEND_SQL, (None, None), 0),  # no actor name or email: nothing for audit_auditactor
    "floor": (FLOOR_SQL, (None, None), FLOOR_CHAINS),
    "plain": (PLAIN_SQL, (FAKE_HASH, FAKE_HASH), 0),
}
SAMPLE_SQL = (
    "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU (running or runnable)'), count(*)"
    " FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid() GROUP BY 1"
)


def details(n: int) -> str:
    return f'{{"changes":{{"status":["draft","live"]}},"note":"déployé","version":{n}}}'


# --- (a) appends per second ---------------------------------------------------------------------


def _writer(pipe: Connection, url: str) -> None:
    """A writer process: on each task (statement, tail, chain, start, stop) append until `stop`, report back."""
    conn = psycopg.connect(url, autocommit=True, application_name=WRITER)
    tag, n = os.getpid(), 0
    with conn, conn.cursor() as cursor:
        while (task := pipe.recv()) is not None:
            sql, tail, chain, start, stop = task
            time.sleep(max(0.0, start - time.monotonic()))
            done = 0
            while time.monotonic() < stop:
                n += 1
                common = (
                    chain, ACTOR_TYPE, f"user:{n % 50}", ACTION, TARGET_TYPE, str(n % 977), OUTCOME, IP, USER_AGENT,
                    f"{tag:x}-{n:012x}", details(n),
                )  # fmt: skip
                cursor.execute(sql, (*common, *tail))
                cursor.fetchone()
                done += 1
            pipe.send((done, time.monotonic()))


@dataclass
class Line:
    """One way of appending: how many processes on how many chains, chained or plain."""

    label: str
    chains: list[int]  # writer i appends to chains[i]
    rates: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    waits: dict[str, Counter] = field(default_factory=lambda: {kind: Counter() for kind in KINDS})

    def median(self, kind: str) -> float:
        return statistics.median(self.rates[kind])

    def ratios(self, kind: str = "chained") -> list[float]:
        """`kind` / plain of each round: the two ran back to back, under the same disk and load."""
        return [c / p for c, p in zip(self.rates[kind], self.rates["plain"], strict=True)]

    def ratio(self, kind: str = "chained") -> float:
        return statistics.median(self.ratios(kind))

    @property
    def ratio_iqr(self) -> tuple[float, float]:
        quartiles = statistics.quantiles(self.ratios(), n=4, method="inclusive")
        return quartiles[0], quartiles[2]


class Writers:
    """`n` writer processes, each with its own connection, driven in lockstep."""

    def __init__(self, url: str, n: int) -> None:
        context = multiprocessing.get_context("fork")  # nothing is connected yet: each opens its own
        self.pipes: list[Connection] = []
        self.procs = []
        for _ in range(n):
            ours, theirs = context.Pipe()
            proc = context.Process(target=_writer, args=(theirs, url), daemon=True)
            proc.start()
            self.pipes.append(ours)
            self.procs.append(proc)
        self.appended: Counter = Counter()  # chain → chained events appended, for the check afterwards

    def run(self, kind: str, chains: list[int], seconds: float, sampler: psycopg.Connection) -> tuple[float, Counter]:
        """Appends per second of len(chains) writers (writer i on chains[i]), and the wait samples."""
        start = time.monotonic() + 0.02
        stop = start + seconds
        sql, tail, offset = KINDS[kind]
        for pipe, chain in zip(self.pipes, chains, strict=False):
            pipe.send((sql, tail, chain + offset, start, stop))
        waits: Counter = Counter()
        time.sleep(max(0.0, start - time.monotonic()) + SAMPLE_EVERY)
        while time.monotonic() < stop - SAMPLE_EVERY:
            for wait, count in sampler.execute(SAMPLE_SQL, (WRITER,)):
                waits[wait] += count
            time.sleep(SAMPLE_EVERY)
        reports = [pipe.recv() for pipe in self.pipes[: len(chains)]]
        if kind == "chained":
            for chain, (done, _) in zip(chains, reports, strict=True):
                self.appended[chain] += done
        return sum(done for done, _ in reports) / (max(end for _, end in reports) - start), waits

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send(None)
        for proc in self.procs:
            proc.join(timeout=30)


def appends(url: str, processes: int, rounds: int, seconds: float) -> tuple[list[Line], Counter]:
    """(a): every line in every round, chained and plain side by side; and the events per chain."""
    lines = [
        Line("1 process, one chain", [101]),
        Line(f"{processes} processes, ONE chain", [201] * processes),
        Line(f"{processes} processes, {processes} chains", [301 + i for i in range(processes)]),
    ]
    writers = Writers(url, processes)
    try:
        with psycopg.connect(url, autocommit=True) as sampler:
            for number in range(rounds + 1):  # round 0 warms up: connections, prepared statements, caches
                for line in lines:
                    kinds = list(KINDS)
                    for kind in kinds[number % len(kinds) :] + kinds[: number % len(kinds)]:
                        rate, waits = writers.run(kind, line.chains, seconds, sampler)
                        if number:
                            line.rates[kind].append(rate)
                            line.waits[kind] += waits
    finally:
        writers.close()
    return lines, writers.appended


def chains_intact(appended: Counter) -> list[str]:
    """Problems of the chains (a) wrote: each must verify, gap-free, with every event appended."""
    from apps.audit.verify import audit_verify

    problems = []
    for chain, count in sorted(appended.items()):
        result = audit_verify(chain)
        if not result.ok or result.events != count or result.last_seq != count:
            problems.append(f"{result.summary()} ({result.events} events read, {count} appended)")
    return problems


# --- (b) verification ---------------------------------------------------------------------------

# The built chain's events: the same fields as the writers', as SQL of the event's number h.s.
EVENT_SQL = f"""SELECT h.s AS seq, timestamptz '2025-01-01 00:00:00+00' + h.s * interval '1.001 ms' AS occurred_at,
    '{ACTOR_TYPE}'::text AS actor_type, 'user:' || mod(h.s, 50) AS actor_id, '{ACTION}'::text AS action,
    '{TARGET_TYPE}'::text AS target_type, mod(h.s, 977)::text AS target_id, '{OUTCOME}'::text AS outcome,
    '{IP}'::text AS ip, '{USER_AGENT}'::text AS user_agent, 'built-' || lpad(to_hex(h.s), 12, '0') AS request_id,
    '{{"changes":{{"status":["draft","live"]}},"note":"déployé","version":' || h.s || '}}' AS details"""
HASH_SQL = (
    "public.bench_event_hash(%(chain)s, e.seq, e.occurred_at, e.actor_type, e.actor_id, e.action, e.target_type,"
    " e.target_id, e.outcome, e.ip, e.user_agent, e.request_id, e.details, h.prev_hash)"
)
FIELDS = (  # as chain.event_hash takes them, besides tenant_id
    "seq", "occurred_at", "actor_type", "actor_id", "action", "target_type", "target_id", "outcome", "ip",
    "user_agent", "request_id", "details", "prev_hash",
)  # fmt: skip
COLUMNS = ", ".join((*FIELDS, "hash"))
BUILD_SQL = f"""
INSERT INTO public.audit_auditevent (tenant_id, {COLUMNS})
WITH RECURSIVE chain AS (
    SELECT e.*, h.prev_hash, {HASH_SQL} AS hash
      FROM (SELECT 1::bigint AS s, repeat('0', 64) AS prev_hash) h CROSS JOIN LATERAL ({EVENT_SQL}) e
    UNION ALL
    SELECT e.*, h.prev_hash, {HASH_SQL}
      FROM chain c CROSS JOIN LATERAL (SELECT c.seq + 1 AS s, c.hash AS prev_hash) h CROSS JOIN LATERAL ({EVENT_SQL}) e
     WHERE c.seq < %(events)s
)
SELECT %(chain)s, {COLUMNS} FROM chain
"""
# audit_event_hash is declared IMMUTABLE, but to_char() and convert_to() are STABLE, so the planner
# will not inline it: each call runs as a function of its own.
HASH_COPY_SQL = """
SELECT replace(replace(pg_get_functiondef('public.audit_event_hash'::regproc),
    'public.audit_event_hash(', 'public.bench_event_hash('), ' IMMUTABLE', ' STABLE')
"""
HEAD_SQL = """
INSERT INTO public.audit_auditchain (tenant_id, seq, hash, updated_at)
SELECT tenant_id, seq, hash, occurred_at FROM public.audit_auditevent
 WHERE tenant_id = %(chain)s ORDER BY seq DESC LIMIT 1
"""
ROWS_SQL = f"SELECT {COLUMNS} FROM public.audit_auditevent WHERE tenant_id = %s AND seq <= %s ORDER BY seq"


@dataclass
class Verifying:
    events: int
    build_seconds: float
    vacuum_seconds: float
    sample: int
    verify: list[float] = field(default_factory=list)  # seconds per audit_verify of the whole chain
    sha256: list[float] = field(default_factory=list)  # seconds per sha256 of the sample's payloads
    event_hash: list[float] = field(default_factory=list)  # seconds per event_hash of the sample's rows

    def rate(self, kind: str) -> float:
        size = self.events if kind == "verify" else self.sample
        return size / statistics.median(getattr(self, kind))

    @property
    def projected(self) -> float:
        return TARGET_EVENTS / self.rate("verify")


def build_chain(url: str, events: int) -> tuple[float, float]:
    """Chain BUILT_CHAIN of `events` events and its head, as audit_append leaves them; (build s, vacuum s).
    `url`: the public schema's owner (it creates the hash function's copy, and vacuums)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT set_config('foundry.tenant_id', %s, false)", (str(BUILT_CHAIN),))
        conn.execute(conn.execute(HASH_COPY_SQL).fetchone()[0])
        started = time.perf_counter()
        conn.execute(BUILD_SQL, {"chain": BUILT_CHAIN, "events": events})
        conn.execute(HEAD_SQL, {"chain": BUILT_CHAIN})
        built = time.perf_counter() - started
        # A chain appended over months is vacuumed; reading fresh rows would first set their hint bits.
        conn.execute("VACUUM (ANALYZE) public.audit_auditevent")
    return built, time.perf_counter() - started - built


def verification(url: str, events: int, sample: int, rounds: int, build: tuple[float, float]) -> Verifying:
    """(b): audit_verify of the whole chain, and the hashing baselines over the first `sample` rows."""
    from apps.audit.chain import VERSION, event_hash, netstrings, time_text
    from apps.audit.verify import audit_verify

    sample = min(sample, events)
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT set_config('foundry.tenant_id', %s, true)", (str(BUILT_CHAIN),))
        rows = conn.execute(ROWS_SQL, (BUILT_CHAIN, sample)).fetchall()
    payloads = [
        netstrings((VERSION, str(BUILT_CHAIN), str(seq), time_text(at), *rest, prev_hash)).encode()
        for seq, at, *rest, prev_hash, _ in rows
    ]
    if hashlib.sha256(payloads[-1]).hexdigest() != rows[-1][-1]:
        sys.exit("the payloads rebuilt here do not give the stored hashes: the baseline would hash other bytes")
    keyed = [dict(zip(FIELDS, row[:-1], strict=True)) for row in rows]

    result = Verifying(events, *build, sample)
    for _ in range(rounds):
        started = time.perf_counter()
        for payload in payloads:
            hashlib.sha256(payload).hexdigest()
        result.sha256.append(time.perf_counter() - started)
        started = time.perf_counter()
        for row in keyed:
            event_hash(tenant_id=BUILT_CHAIN, **row)
        result.event_hash.append(time.perf_counter() - started)
        started = time.perf_counter()
        verified = audit_verify(BUILT_CHAIN)
        result.verify.append(time.perf_counter() - started)
        if not verified.ok or verified.events != events:
            sys.exit(f"the built chain did not verify: {verified.events} events, {verified.problems[:2]}")
    return result


# --- report -------------------------------------------------------------------------------------


def _waits(counter: Counter) -> str:
    total = sum(counter.values()) or 1
    return ", ".join(f"{wait} {count / total:.0%}" for wait, count in counter.most_common(4))


def report_appends(lines: list[Line], rounds: int, seconds: float, problems: list[str], appended: Counter) -> None:
    print(
        f"\n(a) Appends per second, one event per autocommit transaction, each process its own connection: "
        f"{rounds} rounds of {seconds:g} s per line and kind, the kinds back to back; medians"
    )
    print(
        f"  {'':<28}{'chained':>12}{'floor':>12}{'plain':>12}{'chained/plain':>15}{'floor/plain':>13}"
        "   (chained/plain: middle half of the rounds)"
    )
    for line in lines:
        low, high = line.ratio_iqr
        print(
            f"  {line.label:<28}{line.median('chained'):>10,.0f}/s{line.median('floor'):>10,.0f}/s"
            f"{line.median('plain'):>10,.0f}/s{line.ratio():>14.2f}x{line.ratio('floor'):>12.2f}x"
            f"   ({low:.2f}-{high:.2f})"
        )
    print(
        "  floor: audit_append without its chain (tenant setting, INSERT under forced Row-Level Security, seq from a"
        " sequence, no lock, head or hash): what any append through this function and table pays; the chain's own"
        " cost is chained against floor"
    )
    print(
        "  where the writers' backends were (pg_stat_activity samples every 20 ms; Lock:advisory: queued for the"
        " chain, whose holder has yet to commit; IO:WALSync: flushing the WAL at commit; LWLock:WALWrite: waiting for"
        " another backend's flush, which carries this commit too; Client:ClientRead: waiting for the Python client):"
    )
    for line in lines:
        for kind in KINDS:
            print(f"    {line.label}, {kind}: {_waits(line.waits[kind])}")
    total = sum(appended.values())
    if problems:
        print(f"  chains written: {len(appended)}, {total:,} events — NOT INTACT:")
        for problem in problems:
            print(f"    {problem}")
    else:
        print(f"  chains written: {len(appended)}, {total:,} events, every one intact and gap-free (audit_verify)")


def report_verification(v: Verifying, rounds: int) -> None:
    print(
        f"\n(b) Verification of a chain of {v.events:,} events (built server-side in "
        f"{v.build_seconds:.1f} s, {v.events / v.build_seconds:,.0f} events/s; vacuumed in {v.vacuum_seconds:.1f} s), "
        f"median of {rounds} rounds"
    )
    rows = (
        ("audit_verify: read (server-side cursor) + canonical form + hash", "verify"),
        (f"chain.event_hash over {v.sample:,} rows in memory (no reading)", "event_hash"),
        (f"hashlib.sha256 over {v.sample:,} canonical payloads in memory (baseline)", "sha256"),
    )
    for label, kind in rows:
        rate = v.rate(kind)
        print(f"  {label:<72}{rate:>12,.0f} events/s{TARGET_EVENTS / rate:>8.2f} s per 1M")
    verify, both, bare = (1e6 / v.rate(kind) for kind in ("verify", "event_hash", "sha256"))  # µs per event
    print(
        f"  per event: {verify:.2f} µs = {bare:.2f} hashing + {both - bare:.2f} canonical form"
        f" + {verify - both:.2f} reading and checking; audit_verify / sha256 alone: {verify / bare:.1f}x"
    )
    print(f"  audit_verify rounds: {', '.join(f'{s:.2f} s' for s in v.verify)}")
    if v.events != TARGET_EVENTS:
        print(f"  1,000,000 events projected from {v.events:,}: {v.projected:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="rounds of the append lines (a)")
    parser.add_argument("--seconds", type=float, default=0.5, help="seconds of each line and kind per round (a)")
    parser.add_argument("--processes", type=int, default=4, help="writer processes of the many-writer lines (a)")
    parser.add_argument("--events", type=int, default=TARGET_EVENTS, help="events of the chain verified (b)")
    parser.add_argument("--sample", type=int, default=200_000, help="rows the hashing baselines run over (b)")
    parser.add_argument("--verify-rounds", type=int, default=2, help="rounds of the verification (b)")
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds: at least 2 (the ratios' interquartile range needs two)")

    started = time.monotonic()
    with bench_database("foundry_bench_audit") as env:
        url = env["DATABASE_URL"]
        # Set-up in the public schema is its owner's (the writers and audit_verify are the app role).
        with psycopg.connect(owner_url(env), autocommit=True) as conn:
            conn.execute(PLAIN_TABLE_SQL)
            conn.execute(FLOOR_FUNCTION_SQL)
        loads = [os.getloadavg()[0]]
        lines, appended = appends(url, args.processes, args.rounds, args.seconds)
        loads.append(os.getloadavg()[0])

        os.environ.update({**env, "DJANGO_SETTINGS_MODULE": "foundry.settings"})
        import django

        django.setup()
        from django.db import connections

        try:
            problems = chains_intact(appended)
            build = build_chain(owner_url(env), args.events)
            verified = verification(url, args.events, args.sample, args.verify_rounds, build)
        finally:
            connections.close_all()
        loads.append(os.getloadavg()[0])

    print(
        f"\n{os.cpu_count()} CPUs, shared; 1-minute load average {loads[0]:.1f} before (a), {loads[1]:.1f} after (a), "
        f"{loads[2]:.1f} after (b); {time.monotonic() - started:.0f} s in all"
    )
    report_appends(lines, args.rounds, args.seconds, problems, appended)
    report_verification(verified, args.verify_rounds)
    separate, shared = lines[2], lines[1]
    print("\nTargets")
    ok = verdict(
        f"{separate.label}: chained/plain ≥ {MIN_SEPARATE_RATIO}x ({separate.ratio():.2f}x)",
        separate.ratio() >= MIN_SEPARATE_RATIO,
    )
    ok &= verdict(
        f"{shared.label}: chained/plain ≥ {MIN_SHARED_RATIO}x ({shared.ratio():.2f}x)",
        shared.ratio() >= MIN_SHARED_RATIO,
    )
    ok &= verdict(
        f"1,000,000 events verified in < {MAX_VERIFY_SECONDS:g} s ({verified.projected:.1f} s)",
        verified.projected < MAX_VERIFY_SECONDS,
    )
    ok &= verdict("every chain written by the writers verifies intact and gap-free", not problems)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
