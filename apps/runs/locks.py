"""A per-run lock in Redis, so two workers never advance the same run (thread) at once.

The Redis broker hands a task that is still unacknowledged after its visibility timeout to
another worker even when the first is alive and busy with it; the lock makes that copy wait.
The lock expires (FOUNDRY_RUN_LOCK_SECONDS) unless its holder renews it, which a thread does
every third of that time: a worker that dies frees its runs within the expiry. A holder that
fails to renew in time has lost the lock and must stop before its next step (`lost`).
"""

import contextlib
import threading

from django.conf import settings
from django_redis import get_redis_connection
from redis.exceptions import LockError, RedisError


class RunLock:
    def __init__(self, schema: str, run_id: str, *, seconds: float | None = None):
        self.seconds = seconds or settings.FOUNDRY_RUN_LOCK_SECONDS
        self._lock = get_redis_connection("default").lock(
            f"foundry:run-lock:{schema}:{run_id}", timeout=self.seconds, blocking=False, thread_local=False
        )
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._renewer: threading.Thread | None = None

    @property
    def held(self) -> bool:
        """Whether anyone holds this run's lock now."""
        return self._lock.locked()

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def acquire(self) -> bool:
        """Take the lock if nobody holds it, and keep it renewed until `release`."""
        if not self._lock.acquire(blocking=False):
            return False
        self._renewer = threading.Thread(target=self._renew, name="run-lock-renewer", daemon=True)
        self._renewer.start()
        return True

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self._lock.reacquire()
            except (LockError, RedisError):
                self._lost.set()
                return

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        with contextlib.suppress(LockError, RedisError):  # expired (lost) already: nothing to free
            self._lock.release()
