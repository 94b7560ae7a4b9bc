"""Shared plumbing for the benchmarks: a throwaway database of their own, and result lines."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, stdout=subprocess.DEVNULL)
        return shutil.which("wrk") or sys.exit("wrk did not install")
    sys.exit("wrk is needed: apt-get install wrk")


@dataclass(frozen=True)
class Load:
    rps: float
    p50: str
    p99: str


def wrk_load(
    port: int, path: str, host: str, *, duration: int, connections: int, threads: int = 1, auth: str | None = None
) -> Load:
    """Load http://127.0.0.1:port/path (Host: host) with keep-alive connections."""
    headers = ["-H", f"Host: {host}"] + (["-H", f"Authorization: Bearer {auth}"] if auth else [])
    out = subprocess.run(
        [
            wrk_path(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            *headers,
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        sys.exit(f"{path} answered errors under load:\n{out}")
    return Load(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        p50=re.search(r"50%\s+(\S+)", out).group(1),
        p99=re.search(r"99%\s+(\S+)", out).group(1),
    )


def serve(command: list[str], env: dict[str, str], *, port: int, probe: str, host: str) -> subprocess.Popen:
    """Start a server process and wait until `probe` answers 200."""
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    request = urllib.request.Request(f"http://127.0.0.1:{port}{probe}", headers={"Host": host})
    for _ in range(150):
        try:
            with urllib.request.urlopen(request, timeout=1) as response:
                if response.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit(f"the server did not start: {' '.join(command)}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
