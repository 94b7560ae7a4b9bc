"""A per-run lock in Redis, so two workers never advance the same run (thread) at once.

The Redis broker hands a task that is still unacknowledged after its visibility timeout to
another worker even when the first is alive and busy with it; the lock makes that copy wait.
The lock expires (FOUNDRY_RUN_LOCK_SECONDS) unless its holder renews it, which a thread does
every third of that time: a worker that dies frees its runs within the expiry. A renewal that
fails on a Redis error is tried again until the lock would have expired; the holder has lost the
lock (`lost`) once another holds it, or once it has gone without a renewal for the lock's whole
lifetime (less a margin) — also when the whole process stalled meanwhile (a pause, swapping) and
its renewer could not run: it must stop before its next step, and never record it.

Beside each run's lock, its cancellation signal: `run_cancel` sets it just before its transaction
commits, and the holder looks at both in one round trip before every step (`RunLock.check`),
instead of reading the run's row from PostgreSQL each time; signalled, it reads the row, which
is the record (a cancellation not yet committed, or rolled back, is no cancellation). Every step's
statement reads the row too (engine.py), so a signal Redis could not take stops the run a step later.
It is asked on a connection the lock keeps for it (not one taken from the pool and given back
at every step).
"""

import contextlib
import logging
import os
import socket
import threading
import time

from django.conf import settings
from django_redis import get_redis_connection
from redis.exceptions import LockError, RedisError

logger = logging.getLogger(__name__)

# How long a cancellation signal is kept, in seconds: longer than a run can be running (its
# manifest's timeout is at most a day); past it, the row's flag still stops the run a step later.
CANCEL_SIGNAL_SECONDS = 2 * 24 * 3600


# A worker shutting down (SIGTERM, a deploy) says so here for its task processes, which stop
# their runs before the next step and put them back in the queue (`worker_stopping_mark`).
STOPPING_SECONDS = 600


def _cancel_key(schema: str, run_id: str) -> str:
    return f"foundry:run-cancel:{schema}:{run_id}"


def _stopping_key(pid: int) -> str:
    return f"foundry:worker-stopping:{socket.gethostname()}:{pid}"


def worker_stopping_mark(*, stopping: bool) -> None:
    """In a Celery worker's main process: say that it is shutting down (True), or, as it starts,
    that it is not (False: a restarted worker may have the pid and host name of one that stopped,
    as a container restarted keeps both). Best effort: without it a run goes on to its end, or to
    the worker's stop timeout and then its recovery."""
    try:
        redis = get_redis_connection("default")
        if stopping:
            redis.set(_stopping_key(os.getpid()), b"1", ex=STOPPING_SECONDS)
        else:
            redis.delete(_stopping_key(os.getpid()))
    except RedisError:
        logger.warning("Redis could not take this worker's shutdown notice; its runs finish their attempt")


def cancel_signal(schema: str, run_ids: list[str]) -> None:
    """Tell the workers holding these runs to read whether they were cancelled (best effort: when
    Redis cannot be reached, each stops after the step it is taking, on recording it)."""
    try:
        with get_redis_connection("default").pipeline(transaction=False) as pipe:
            for run_id in run_ids:
                pipe.set(_cancel_key(schema, run_id), b"1", ex=CANCEL_SIGNAL_SECONDS)
            pipe.execute()
    except RedisError:
        logger.warning("runs %s: Redis could not take the cancellation signal; they stop a step later", run_ids)


class LockLost(Exception):
    """The run's lock expired under this worker, or another worker has claimed the run since:
    another may own the run now, so stop writing."""


class RunLock:
    def __init__(self, schema: str, run_id: str, *, seconds: float | None = None):
        self.seconds = seconds or settings.FOUNDRY_RUN_LOCK_SECONDS
        self._redis = get_redis_connection("default")
        self._lock = self._redis.lock(
            f"foundry:run-lock:{schema}:{run_id}", timeout=self.seconds, blocking=False, thread_local=False
        )
        self._cancel = _cancel_key(schema, run_id)
        # The worker's main process: this process's parent in a prefork pool, itself in a solo one.
        self._stopping = tuple(dict.fromkeys((_stopping_key(os.getppid()), _stopping_key(os.getpid()))))
        self.worker_stopping = False  # as the last `check` found it
        self._stop = threading.Event()
        self._lost = threading.Event()
        # Lost because Redis could not be reached for the lock's whole lifetime (an outage, not
        # another holder): the holder puts the run back in the queue for its task's retry.
        self.unreachable = False
        self._renewer: threading.Thread | None = None
        self._valid_until = 0.0  # time.monotonic() by which the lock is surely still ours
        self._margin = min(1.0, self.seconds / 10)  # Redis's clock and the round trip's time
        self._conn = None  # the connection `check` asks on, kept until `release`

    @property
    def held(self) -> bool:
        """Whether anyone holds this run's lock now."""
        return self._lock.locked()

    @property
    def lost(self) -> bool:
        return self._lost.is_set() or time.monotonic() >= self._valid_until - self._margin

    def acquire(self) -> bool:
        """Take the lock if nobody holds it, and keep it renewed until `release`."""
        sent = time.monotonic()
        if not self._lock.acquire(blocking=False):
            return False
        self._valid_until = sent + self.seconds
        self._renewer = threading.Thread(target=self._renew, name="run-lock-renewer", daemon=True)
        self._renewer.start()
        return True

    def check(self) -> bool:
        """Before a step, in one round trip: LockLost unless the lock is still this holder's (as
        Redis has it now, not as the renewer last found it); whether the run's cancellation was
        signalled; and (`worker_stopping`) whether the worker is shutting down. A RedisError when
        Redis cannot be reached."""
        keys = (self._lock.name, self._cancel, *self._stopping)
        try:
            if self._conn is None:
                self._conn = self._redis.connection_pool.get_connection()
            self._conn.send_command("MGET", *keys)
            holder, cancelled, *stopping = self._conn.read_response()
        except RedisError:
            self._drop()
            holder, cancelled, *stopping = self._redis.mget(*keys)  # with the client's retries
        except BaseException:  # interrupted between asking and reading: a reply may still be due
            self._drop()
            raise
        if holder is None or holder != self._lock.local.token:
            self._lost.set()
            raise LockLost()
        self.worker_stopping = any(value is not None for value in stopping)
        return cancelled is not None

    def _drop(self) -> None:
        """Give the kept connection back, closed (a reply may still be due on it)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(RedisError):
                conn.disconnect()
                self._redis.connection_pool.release(conn)

    def _renew(self) -> None:
        wait = self.seconds / 3
        while not self._stop.wait(wait):
            sent = time.monotonic()
            try:
                self._lock.reacquire()
            except LockError:  # expired, and perhaps another's now
                self._lost.set()
                return
            except RedisError:  # Redis away a moment: try again soon, while the lock is still ours
                if time.monotonic() >= self._valid_until - self._margin:
                    self.unreachable = True
                    self._lost.set()
                    return
                wait = min(1.0, self.seconds / 10)
                continue
            self._valid_until, wait = sent + self.seconds, self.seconds / 3

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(RedisError):
                self._redis.connection_pool.release(conn)
        with contextlib.suppress(LockError, RedisError):  # expired (lost) already: nothing to free
            self._lock.release()
