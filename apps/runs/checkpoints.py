"""LangGraph's PostgresSaver, writing to the tables of one tenant's schema (migrations/0003).

Isolation: each run's thread lives in its own tenant's schema; the saver reaches that schema
only. Each saver call is one pipeline on a connection in autocommit mode: its first statement
sets the search path with `set_config(..., is_local => true)`, and every statement up to the
pipeline's one Sync (sent when the call ends) runs in the same implicit transaction, so the
setting covers them all and ends with that transaction. Fetching a result in between sends a
Flush, not a Sync, and `executemany` rides the same pipeline: neither ends the transaction.
A connection handed around by a transaction pooler (PgBouncer in transaction mode) therefore
never carries one tenant's path into another's work. A statement that fails rolls the whole call
back at the Sync; a Python error between two statements does not undo those before it, as with
LangGraph's own pipelined PostgresSaver, whose writes are idempotent upserts.

Server-side prepared statements: on the main database's connection (psycopg prepares a statement
at its first use), off (`prepare_threshold=None`) on FOUNDRY_CHECKPOINT_DATABASE_URL's, which may
be such a pooler (PgBouncer 1.18 in transaction mode hands a statement prepared on one server
connection to clients of another). The main database is reached directly or through a pooler in
session mode (docs/tenancy.md), where a statement stays prepared. A prepared statement follows
the search path: PostgreSQL analyses and plans it again whenever the path differs from the one it
was planned under, so a statement prepared in one tenant's schema reads another's tables there
(tests/runs/test_engine.py, "isolation"). Preparing saves ~0.3 ms per step (bench/runs.py).
At the first use, not psycopg's default 5th: psycopg (3.3.9) checks a statement it prepares in a
pipeline against the server's answer only when the statement is new to it, so a statement due
for preparing at its 6th use, in a call whose pipeline an earlier statement aborted (the fence;
a purged workspace's schema), stayed "prepared" for psycopg alone, and each later use on the
process's connection failed ("prepared statement _pg3_2 does not exist").

Fenced by the run's claim (apps/runs/engine.py): a saver made for a worker's attempt at a run
(`claim`: the run's id and the attempt number its claim set) opens each call by locking the
run's row (KEY SHARE: a new claim, which takes the row FOR UPDATE, waits until the call's
transaction ends) on the condition that the run still carries that number; when it does not,
the statement divides by zero, which aborts the call's transaction, and the call raises
LockLost. A worker whose run another has claimed writes no checkpoint, however late it wakes.
Checkpoints are always in the main database (directly, or through a pooler given as
FOUNDRY_CHECKPOINT_DATABASE_URL): a URL reaching another database is refused (`checkpointer`).
(A run this connection cannot see is not fenced: every run is committed before a worker claims
it; only a test's own transaction, which the checkpoints' connection never sees, holds one.)

A task's channel writes (LangGraph's pending writes, which delta channels replay to rebuild the
state) are held by the saver and written in its next call's transaction, normally the checkpoint
that applies them (LangGraph waits for a task's delta-channel writes before that checkpoint):
one transaction per step instead of two. Interrupts, errors and resumes (WRITES_IDX_MAP) are
written at once, with anything held, and so is every later write for the same checkpoint (that
step makes none). `flush` writes what a graph's invocation left held (AgentGraph calls it: the
last task's writes may come after the last checkpoint). Writes held when a worker dies are lost
with the checkpoint after them, as with LangGraph's async durability: recovery resumes from the
checkpoint before and replays the steps recorded since (engine.py). A fenced call refuses what
it holds with the rest.

On the main database, checkpoints and held writes commit without waiting for the WAL flush
(`synchronous_commit` off, for that transaction only). A worker's death loses nothing committed;
a database crash can lose the last fraction of a second of them, never one older than a step
record that survived (the record's commit flushes the WAL written before it), and the run
resumes from the newest checkpoint left and replays the steps recorded after it, as after a lost
worker. Interrupts, errors, resumes and deletions always wait for the flush (a run waiting for an
approval, an erasure, depend on them). Measured with the held writes: 0.6 ms
per step less for the platform (bench/runs.py).

Only `prune` breaks the rule (it opens a transaction of its own inside the call, and entering
it syncs the pipeline first, ending the search path), so it is refused here.

One connection per process, opened on first use (so each forked Celery worker process opens
its own) and reopened when it breaks, or once a call cut off mid-pipeline by an exception (a
soft time limit while the call waited for the server) left it unsettled. Every saver on it
shares one lock: LangGraph writes checkpoints from background threads, and a sub-agent's run
uses the same connection while its parent's writes may still be in flight; two pipelines must
never interleave on it.
"""

import functools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

import psycopg
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection as django_connection
from langgraph.checkpoint.base import WRITES_IDX_MAP, get_checkpoint_id
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from psycopg import pq, sql
from psycopg.rows import DictRow, dict_row

from apps.runs.locks import LockLost

_local = threading.local()
IDLE = pq.TransactionStatus.IDLE
PREPARE_THRESHOLD = 0  # prepared at the first use: the only one psycopg checks in a pipeline
# Each call's first statement: the tenant's schema (and for a checkpoint on the main database, a
# commit that does not wait for the disk); for a saver fenced by a claim, the fence too (see
# above), in the same statement: 1 / 0 when the run carries another attempt number than the
# claim's. Its table is named with its schema, which the statement's own setting does not reach.
_SCOPE = "SELECT set_config('search_path', %s, true)"
_RELAXED = ", set_config('synchronous_commit', 'off', true)"
_FENCE = (
    " , 1 / (count(*) FILTER (WHERE run.attempt <> %s) = 0)::int"
    " FROM (SELECT attempt FROM {}.runs_run WHERE id = %s FOR KEY SHARE) AS run"
)


@functools.cache
def _scope(schema: str, *, relaxed: bool, fenced: bool) -> str:
    statement = _SCOPE + (_RELAXED if relaxed else "") + (_FENCE if fenced else "")
    return sql.SQL(statement).format(sql.Identifier(schema)).as_string(None)


def _conninfo() -> tuple[str, int | None]:
    """Where checkpoints are written, and psycopg's prepare threshold there (None: never prepare)."""
    if settings.FOUNDRY_CHECKPOINT_DATABASE_URL:
        return settings.FOUNDRY_CHECKPOINT_DATABASE_URL, None
    db = django_connection.settings_dict
    conninfo = psycopg.conninfo.make_conninfo(
        host=db["HOST"] or "127.0.0.1",
        port=str(db["PORT"] or 5432),
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"],
        application_name="foundry-checkpoints",
    )
    return conninfo, PREPARE_THRESHOLD


def checkpoint_connection() -> psycopg.Connection:
    """This process's (and thread's) connection for checkpoints, opened or reopened as needed."""
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed or conn.broken or getattr(_local, "pid", None) != os.getpid():
        conninfo, prepare_threshold = _conninfo()
        conn = psycopg.Connection.connect(
            conninfo, autocommit=True, prepare_threshold=prepare_threshold, row_factory=dict_row
        )
        _local.conn, _local.pid, _local.lock = conn, os.getpid(), threading.Lock()
        _local.main = None  # whether it reaches the main database (_main_database), once asked
    return conn


_WHERE = "SELECT inet_server_addr()::text AS addr, inet_server_port() AS port, current_database() AS db"


def _main_database(conn: psycopg.Connection) -> bool:
    """Whether `conn` reaches the main database (directly or through a pooler), where the runs
    are, which the fence reads; not a database of the checkpoints' own, which has no runs."""
    if not settings.FOUNDRY_CHECKPOINT_DATABASE_URL:
        return True
    with django_connection.cursor() as cursor:
        cursor.execute(_WHERE)
        main = cursor.fetchone()
    theirs = conn.execute(_WHERE).fetchone()
    return tuple(main) == (theirs["addr"], theirs["port"], theirs["db"])


def _unsettled_closed(conn: psycopg.Connection) -> None:
    """Close `conn` when a call left it unsettled: an exception raised by a signal handler
    (Celery's soft time limit) while the call waited for the server leaves libpq in pipeline mode
    with that call's results unread, which psycopg neither closes nor marks broken; every later
    call of the process on it would read them as its own. `checkpoint_connection` opens another;
    a saver still holding this one fails with a transient error, and its run is tried again."""
    if conn.closed:
        return
    if conn.pgconn.pipeline_status != pq.PipelineStatus.OFF or conn.pgconn.transaction_status != IDLE:
        conn.close()


def checkpoint_connection_close() -> None:
    conn = getattr(_local, "conn", None)
    if conn is not None and getattr(_local, "pid", None) == os.getpid():
        conn.close()
    _local.conn = None


class TenantSaver(PostgresSaver):
    """PostgresSaver confined to one schema (see the module docstring)."""

    def __init__(
        self,
        conn: psycopg.Connection,
        schema: str,
        *,
        lock: AbstractContextManager | None = None,
        fence: Callable[[], None] | None = None,
        claim: tuple[object, int] | None = None,
        relaxed: bool = False,
        new_thread: str | None = None,
    ):
        # Only the types runs store (LangGraph's safe list: messages, Send, Interrupt, ...): by
        # default LangGraph would import and call any `module.function` a stored value names,
        # and a workspace's checkpoints come from archives and backups too.
        super().__init__(conn, serde=JsonPlusSerializer(allowed_msgpack_modules=None))
        if lock is not None:
            self.lock = lock  # the connection's, shared by every saver on it
        self.schema = schema
        self.search_path = sql.Identifier(schema).as_string(conn)
        # Called before every write; raises when the writer may no longer write (a worker whose
        # run's lock was lost: its late checkpoint would otherwise become the thread's newest).
        self.fence = fence
        self.claim = claim  # (run id, attempt): every call fenced by it in the database
        # A task's channel writes, stored by the saver's next call (see put_writes).
        self._held: list[tuple] = []
        self._held_lock = threading.Lock()
        self._written_at_once: set[str] = set()  # checkpoints with an interrupt, error or resume
        # Checkpoints and held writes commit without the flush (on the main database only).
        self.relaxed = relaxed
        self._putting = threading.local()
        # A thread known to have no checkpoint (a run no worker has claimed before: only a claim
        # lets a worker write one): LangGraph's first look for its latest checkpoint, as the run
        # starts, is answered without a round trip. Any later look asks the database.
        self._new_thread = new_thread

    def get_tuple(self, config):
        configurable = config["configurable"]
        if (
            self._new_thread is not None
            and configurable["thread_id"] == self._new_thread
            and not configurable.get("checkpoint_ns")
            and not get_checkpoint_id(config)
        ):
            self._new_thread = None
            return None
        return super().get_tuple(config)

    def put(self, config, checkpoint, metadata, new_versions):
        if self.fence is not None:
            self.fence()
        with self._relaxed():
            return super().put(config, checkpoint, metadata, new_versions)

    @contextmanager
    def _relaxed(self) -> Iterator[None]:
        """This thread's saver calls meanwhile commit without the flush (when `relaxed`)."""
        self._putting.on = True
        try:
            yield
        finally:
            self._putting.on = False

    def flush(self) -> None:
        """Write what is held: after a graph's invocation, the writes of a task no checkpoint
        followed (the last one's, whose checkpoint LangGraph may save first; a task finished
        beside an interrupt, whose step makes no checkpoint). AgentGraph calls it."""
        if self._held:
            with self._relaxed(), self._cursor():
                pass

    def put_writes(self, config, writes, task_id, task_path=""):
        if self.fence is not None:
            self.fence()
        checkpoint_id = config["configurable"]["checkpoint_id"]
        if checkpoint_id in self._written_at_once or any(channel in WRITES_IDX_MAP for channel, _ in writes):
            # An interrupt or an error: that step makes no checkpoint, so what its other tasks
            # write (now or later) goes at once too, or a resume would run them again.
            self._written_at_once.add(checkpoint_id)
            return super().put_writes(config, writes, task_id, task_path)
        rows = self._dump_writes(
            config["configurable"]["thread_id"],
            config["configurable"]["checkpoint_ns"],
            checkpoint_id,
            task_id,
            task_path,
            writes,
        )
        with self._held_lock:
            self._held.extend(rows)

    @contextmanager
    def _cursor(self, *, pipeline: bool = False) -> Iterator[psycopg.Cursor[DictRow]]:
        conn = self.conn
        with self.lock:
            try:
                with conn.pipeline(), conn.cursor(binary=True, row_factory=dict_row) as cur:
                    relaxed = self.relaxed and getattr(self._putting, "on", False)
                    scope = _scope(self.schema, relaxed=relaxed, fenced=self.claim is not None)
                    fence = () if self.claim is None else (self.claim[1], self.claim[0])
                    cur.execute(scope, (self.search_path, *fence))
                    with self._held_lock:
                        held, self._held = self._held, []
                    if held:
                        cur.executemany(self.INSERT_CHECKPOINT_WRITES_SQL, held)
                    yield cur
            except psycopg.errors.DivisionByZero:  # only the fence divides
                raise LockLost() from None
            except BaseException:
                _unsettled_closed(conn)
                raise

    def threads_holding(self, data: bytes) -> list[str]:
        """The threads whose stored checkpoints, pending writes or channel values hold `data`
        (as bytes: LangGraph serialises them, so text columns alone do not show it), in any case
        of its ASCII letters (an erased address written Pat.Quinlan@… is pat.quinlan@…'s). A
        serialised value is no text (msgpack): it is searched in `encode(…, 'escape')`'s form,
        where every byte outside printable ASCII is an octal escape, the same for both sides."""
        with self._cursor() as cur:
            # The escaped form finds the candidates (a needle that starts with a digit also matches
            # the tail of an escape, `\\255` before `pat@…`); each is confirmed on its bytes.
            cur.execute(
                "WITH needle AS (SELECT lower(encode(%(data)s::bytea, 'escape')) AS bytes)"
                " SELECT thread_id, blob FROM checkpoint_blobs, needle"
                " WHERE position(needle.bytes IN lower(encode(blob, 'escape'))) > 0"
                " UNION ALL SELECT thread_id, blob FROM checkpoint_writes, needle"
                " WHERE position(needle.bytes IN lower(encode(blob, 'escape'))) > 0",
                {"data": data},
            )
            needle = data.lower()  # bytes.lower(): ASCII letters only, as the escaped search folds them
            threads = {row["thread_id"] for row in cur.fetchall() if needle in bytes(row["blob"]).lower()}
            cur.execute(
                "SELECT thread_id FROM checkpoints"
                " WHERE position(lower(convert_from(%(data)s::bytea, 'UTF8')) IN lower(checkpoint::text)) > 0",
                {"data": data},
            )
            threads.update(row["thread_id"] for row in cur.fetchall())
            return sorted(threads)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Delete the threads' checkpoints (`strategy="delete"`), each in one call confined to the
        schema like every other. The library's own prune opens a transaction outside `_cursor`
        (so outside the schema), and its "keep_latest" cannot prune threads that keep messages in
        delta channels, as runs do: that strategy is refused with ValueError."""
        if isinstance(thread_ids, str):
            raise TypeError("thread_ids is a list of thread ids, not one string")
        if strategy != "delete":
            raise ValueError(
                f"strategy {strategy!r}: runs keep messages in delta channels, rebuilt from older "
                "checkpoints, so only 'delete' (every checkpoint of the thread) applies"
            )
        for thread_id in thread_ids:
            self.delete_thread(thread_id)


def checkpointer(
    schema: str,
    *,
    fence: Callable[[], None] | None = None,
    claim: tuple[object, int] | None = None,
    new_thread: str | None = None,
) -> TenantSaver:
    conn = checkpoint_connection()
    if _local.main is None:
        _local.main = _main_database(conn)
    if not _local.main:
        # The checkpoint tables are the workspace schema's own (its migrations make them), and
        # export, import, backups and purges handle them with the schema: another database has
        # none of them, and what it held would be outside all of those.
        raise ImproperlyConfigured(
            "FOUNDRY_CHECKPOINT_DATABASE_URL reaches another database than DATABASE_URL; it may only "
            "be another way to the main database (a transaction pooler in front of it)."
        )
    return TenantSaver(conn, schema, lock=_local.lock, fence=fence, claim=claim, relaxed=True, new_thread=new_thread)
