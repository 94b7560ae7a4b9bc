"""Shared plumbing for the benchmarks: a throwaway database of their own, and result lines."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def bench_database(name: str) -> Iterator[dict[str, str]]:
    """Create database `name` (dropped afterwards), migrate it, and yield the environment for it.

    Needs the environment `bin/dev` sets up (DATABASE_URL, FOUNDRY_SECRET_KEY); run
    `bin/dev setup` first.
    """
    base_url = os.environ.get("DATABASE_URL")
    if not base_url or not os.environ.get("FOUNDRY_SECRET_KEY"):
        sys.exit("Run through bin/dev's environment, e.g.: bin/dev bench bench/<name>.py")
    admin_url = _with_database(base_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": _with_database(base_url, name), "FOUNDRY_LOG_LEVEL": "WARNING"}
    try:
        manage(env, "migrate_platform", "--verbosity", "0")
        yield env
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env: dict[str, str], *args: str) -> float:
    """Run a management command in a fresh process; return its wall time in seconds."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", *args], env=env, cwd=ROOT, check=True)
    return time.perf_counter() - started


def verdict(label: str, ok: bool) -> bool:
    print(f"  {'PASS' if ok else 'FAIL'}  {label}")
    return ok
