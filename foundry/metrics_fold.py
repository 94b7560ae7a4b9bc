"""The counter files of processes that have ended, folded into one file per kind and directory.

In prometheus_client's multiprocess mode (foundry/metrics.py) each process writes its counters
and histograms to files of its own (`counter_<pid>.db`, `histogram_<pid>.db`), and a scrape sums
every file. Nothing deletes a process's files when it ends, so each gunicorn worker recycled after
`max_requests`, each Celery worker restarted, left its files behind: the scrape read more of them
every day, the disk held more. Here the files of ended processes are added into
`<kind>_archive.db` of their directory — the sums a scrape shows stay the same — and deleted.

A directory holds the files of one host (container), so whether a process has ended is asked of
this host's process table; folding runs on that host only: the gunicorn master when a worker
exits (foundry/gunicorn.conf.py `child_exit`) and each Celery worker process as it starts (the
files of processes killed before). Scrapes and folds take a lock on FOUNDRY_METRICS_DIR's
`.lock` (shared and exclusive): a scrape never sees a process's figures twice or not at all.

No Django here: the gunicorn master, which loads no application, runs it.
"""

import fcntl
import logging
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)

_FILE = re.compile(r"(counter|histogram|summary)_([0-9]+)\.db")  # a live gauge has no sum to keep


def metrics_directory(root: str | None = None) -> str | None:
    """This host's directory of counter files under `root` (default FOUNDRY_METRICS_DIR); None without one."""
    root = os.environ.get("FOUNDRY_METRICS_DIR", "") if root is None else root
    return os.path.join(root, socket.gethostname()) if root else None


@contextmanager
def files_locked(root: str, *, exclusive: bool) -> Iterator[None]:
    """The lock of every counter file under `root`: shared to read them all, exclusive to fold."""
    with open(os.path.join(root, ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield  # closing the file lets go of the lock


def _ended(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process: alive
        return False
    return False


def metrics_fold(root: str | None = None) -> int:
    """Fold the files of this host's ended processes into its archive files; how many were folded."""
    # Not at the module's top: settings.py imports this module before it sets
    # PROMETHEUS_MULTIPROC_DIR, which prometheus_client reads once, when first imported.
    from prometheus_client.mmap_dict import MmapedDict

    directory = metrics_directory(root)
    if directory is None or not os.path.isdir(directory):
        return 0
    folded = 0
    with files_locked(os.path.dirname(directory), exclusive=True):
        ended = [
            (match[1], os.path.join(directory, match[0]))
            for name in sorted(os.listdir(directory))
            if (match := _FILE.fullmatch(name)) and _ended(int(match[2]))
        ]
        archives: dict = {}  # kind → its archive file (MmapedDict)
        try:
            for kind, path in ended:
                if kind not in archives:
                    archives[kind] = MmapedDict(os.path.join(directory, f"{kind}_archive.db"))
                archive = archives[kind]
                for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(path):
                    total, _ = archive.read_value(key)
                    archive.write_value(key, total + value, timestamp)
                os.remove(path)
                folded += 1
        finally:
            for archive in archives.values():
                archive.close()
    return folded


def metrics_fold_quietly(root: str | None = None) -> None:
    """metrics_fold from a hook that must not fail (a process exiting or starting): a failure is logged."""
    try:
        metrics_fold(root)
    except Exception:
        logger.exception("folding the counter files of ended processes failed; they stay as they are")
