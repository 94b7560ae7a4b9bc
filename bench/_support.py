"""Shared plumbing for the benchmarks: the dev environment, a throwaway database, servers, wrk."""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE_PREFIX = "foundry_bench_"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def dev_environment() -> dict[str, str]:
    """The environment `bin/dev` gives its commands: variables already set win over .data/env.

    So a benchmark runs as `.venv/bin/python bench/<name>.py` after `bin/dev setup`, as well as
    through `bin/dev bench`.
    """
    env = dict(os.environ)
    env_file = ROOT / ".data" / "env"
    if env_file.is_file():
        for line in env_file.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key) and not env.get(key):
                env[key] = value
    if not env.get("DATABASE_URL") and env.get("FOUNDRY_DB_PASSWORD"):
        pg_port = env.get("FOUNDRY_PG_PORT", "5432")
        env["DATABASE_URL"] = f"postgres://foundry:{env['FOUNDRY_DB_PASSWORD']}@127.0.0.1:{pg_port}/foundry"
        if env.get("FOUNDRY_DB_OWNER_PASSWORD"):
            env.setdefault("FOUNDRY_DB_OWNER_USER", "foundry_owner")  # as bin/dev sets it for its own database
    redis_port = env.get("FOUNDRY_REDIS_PORT", "6379")
    env.setdefault("REDIS_URL", f"redis://127.0.0.1:{redis_port}/0")
    env.setdefault("FOUNDRY_CACHE_URL", f"redis://127.0.0.1:{redis_port}/1")
    if not env.get("DATABASE_URL") or not env.get("FOUNDRY_SECRET_KEY"):
        sys.exit(
            "No DATABASE_URL / FOUNDRY_SECRET_KEY: run `bin/dev setup` first (or `bin/dev bench bench/<name>.py`)."
        )
    return env


@contextmanager
def bench_database(name: str) -> Iterator[dict[str, str]]:
    """Create database `name` (dropped afterwards), migrate it, and yield the environment for it.

    The database is created by the owner role (or the application role when there is only one)
    next to the dev database, which is never touched. The yielded environment has DEBUG off and logging at WARNING, and
    plans' request rates scaled so far up that no benchmark is rate-limited: they measure serving,
    and the limiter still runs its check on every request (bench/ratelimit.py measures the check).
    """
    if not name.startswith(BENCH_DATABASE_PREFIX):
        raise ValueError(f"benchmark databases are named {BENCH_DATABASE_PREFIX}*, not {name!r}")
    base = dev_environment()
    admin_url = _with_database(owner_url(base), "postgres")
    drop_database(admin_url, name)  # left over by a killed run
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {
        **base,
        "DATABASE_URL": _with_database(base["DATABASE_URL"], name),
        "FOUNDRY_DEBUG": "0",
        "FOUNDRY_LOG_LEVEL": "WARNING",
        "FOUNDRY_RATELIMIT_PLAN_SCALE": "10000",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    try:
        manage(env, "migrate_platform", "--verbosity", "0")
        yield env
    finally:
        drop_database(admin_url, name)


def owner_url(env: dict[str, str]) -> str:
    """DATABASE_URL as the owner role, when there is one: it creates the database, as
    `migrate_platform` then migrates it as that role (foundry/db/roles.py)."""
    if not env.get("FOUNDRY_DB_OWNER_USER"):
        return env["DATABASE_URL"]
    parts = urlsplit(env["DATABASE_URL"])
    user, password = env["FOUNDRY_DB_OWNER_USER"], env.get("FOUNDRY_DB_OWNER_PASSWORD", "")
    host = f"{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"))


def drop_database(admin_url: str, name: str, attempts: int = 30) -> None:
    """DROP DATABASE ... WITH (FORCE), retried: the owner role may not terminate an
    autovacuum worker that is still analysing a table the benchmark filled, so the drop waits
    for it to finish (a second at a time) instead of failing the run at its very end."""
    for attempt in range(attempts):
        try:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except psycopg.errors.InsufficientPrivilege:
            if attempt == attempts - 1:
                raise
            time.sleep(1.0)


def manage(env: dict[str, str], *args: str, quiet: bool = False) -> float:
    """Run a management command in a fresh process; return its wall time in seconds."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "manage.py", *args],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL if quiet else None,
    )
    return time.perf_counter() - started


def manage_shell(env: dict[str, str], script: str) -> str:
    """Run `script` with `manage.py shell -c` in a fresh process; the last line it printed."""
    command = [sys.executable, "manage.py", "shell", "-c", script]
    out = subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1]


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
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit("wrk is needed and is not installed: run `apt-get install wrk` as root (Debian package `wrk`).")
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"]
    if subprocess.run(install, env=apt_env, stdout=subprocess.DEVNULL, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=apt_env, check=True)
        subprocess.run(install, env=apt_env, stdout=subprocess.DEVNULL, check=True)
    return shutil.which("wrk") or sys.exit("wrk did not install")


@dataclass(frozen=True)
class Load:
    rps: float
    p50: str
    p99: str
    requests: int = 0


def wrk_load(
    port: int,
    path: str,
    host: str,
    *,
    duration: int,
    connections: int,
    threads: int = 1,
    script: Path | None = None,
    auth: str | None = None,
) -> Load:
    """Load http://127.0.0.1:port/path (Host: host, or as the Lua `script` says) with keep-alive connections."""
    out = subprocess.run(
        [
            wrk_path(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-H",
            f"Host: {host}",
            *(["-H", f"Authorization: Bearer {auth}"] if auth else []),
            *(["-s", str(script)] if script else []),
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        sys.exit(f"{path} answered errors under load:\n{out}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    # Anchored: the thread-stats lines end in percentages too ("…  75.00%").
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    requests = re.search(r"(\d+) requests in", out)
    if not (rps and p50 and p99 and requests):
        sys.exit(f"could not read wrk's output:\n{out}")
    return Load(rps=float(rps.group(1)), p50=p50.group(1), p99=p99.group(1), requests=int(requests.group(1)))


def children_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by the live child processes of `pid` (Linux /proc)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == pid:  # fields[0] is the state, [1] the parent, [11]/[12] utime/stime
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def serve(command: list[str], env: dict[str, str], *, port: int, probe: str, host: str) -> subprocess.Popen:
    """Start a server process and wait until `probe` answers 200; on failure show its output."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        request = urllib.request.Request(f"http://127.0.0.1:{port}{probe}", headers={"Host": host})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(request, timeout=1) as response:
                    if response.status == 200:
                        return proc
            except OSError:
                time.sleep(0.1)
        stop(proc)
        log.seek(0)
        output = log.read().decode(errors="replace")[-3000:]
    sys.exit(f"the server did not start: {' '.join(command)}\n{output}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
