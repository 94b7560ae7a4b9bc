"""A per-run lock in Redis, so two workers never advance the same run (thread) at once.

The Redis broker hands a task that is still unacknowledged after its visibility timeout to
another worker even when the first is alive and busy with it; the lock makes that copy wait.
The lock expires (FOUNDRY_RUN_LOCK_SECONDS) unless its holder renews it, which a thread does
every third of that time: a worker that dies frees its runs within the expiry. A renewal that
fails on a Redis error is tried again until the lock would have expired; the holder has lost the
lock (`lost`) once another holds it, or once it has gone without a renewal for the lock's whole
lifetime (less a margin) — also when the whole process stalled meanwhile (a pause, swapping) and
its renewer could not run: it must stop before its next step, and never record it.
"""

import contextlib
import threading
import time

from django.conf import settings
from django_redis import get_redis_connection
from redis.exceptions import LockError, RedisError


class LockLost(Exception):
    """The run's lock expired under this worker, or another worker has claimed the run since:
    another may own the run now, so stop writing."""


class RunLock:
    def __init__(self, schema: str, run_id: str, *, seconds: float | None = None):
        self.seconds = seconds or settings.FOUNDRY_RUN_LOCK_SECONDS
        self._lock = get_redis_connection("default").lock(
            f"foundry:run-lock:{schema}:{run_id}", timeout=self.seconds, blocking=False, thread_local=False
        )
        self._stop = threading.Event()
        self._lost = threading.Event()
        # Lost because Redis could not be reached for the lock's whole lifetime (an outage, not
        # another holder): the holder puts the run back in the queue for its task's retry.
        self.unreachable = False
        self._renewer: threading.Thread | None = None
        self._valid_until = 0.0  # time.monotonic() by which the lock is surely still ours
        self._margin = min(1.0, self.seconds / 10)  # Redis's clock and the round trip's time

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
        with contextlib.suppress(LockError, RedisError):  # expired (lost) already: nothing to free
            self._lock.release()
