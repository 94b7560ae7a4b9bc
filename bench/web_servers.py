"""Which server should run the web process: measured, not assumed.

Serves the app four ways on loopback — gunicorn sync and gthread (WSGI), uvicorn with
asyncio+h11 and with uvloop+httptools (ASGI), two workers each — and loads each with wrk
(keep-alive) on /healthz (no database) and on a tenant endpoint doing one query. Prints
requests/s and latency, and each server's ratio against gunicorn sync measured in the same run.

    bin/dev bench bench/web_servers.py [--duration 5] [--connections 16]

Informational (no target); docs/operations/serving.md records a run and the choice made.
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import ROOT, bench_database, free_port, serve, stop, wrk_load

HOST = "acme.localhost"
ENDPOINTS = {"/healthz": "no query", "/bench/one-query": "one query, tenant"}


def _command(server: str, port: int) -> tuple[list[str], dict[str, str]]:
    gunicorn = [sys.executable, "-m", "gunicorn", "foundry.wsgi", "--config", "foundry/gunicorn.conf.py"]
    uvicorn = [
        sys.executable,
        "-m",
        "uvicorn",
        "foundry.asgi:application",
        "--workers",
        "2",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return {
        "gunicorn sync": (gunicorn, {"FOUNDRY_WEB_THREADS": "1"}),
        "gunicorn gthread 2x4": (gunicorn, {"FOUNDRY_WEB_THREADS": "4"}),
        "uvicorn asyncio+h11": ([*uvicorn, "--loop", "asyncio", "--http", "h11"], {}),
        "uvicorn uvloop+httptools": ([*uvicorn, "--loop", "uvloop", "--http", "httptools"], {}),
    }[server]


SERVERS = ["gunicorn sync", "gunicorn gthread 2x4", "uvicorn asyncio+h11", "uvicorn uvloop+httptools"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()

    results = {}
    with bench_database("foundry_bench_servers") as env:
        from subprocess import DEVNULL, run

        run(
            [sys.executable, "manage.py", "create_tenant", "acme", "--name", "Acme", "--owner-email", "o@acme.test"],
            env=env,
            cwd=ROOT,
            check=True,
            stdout=DEVNULL,
        )
        for server in SERVERS:
            port = free_port()
            command, extra = _command(server, port)
            server_env = {
                **env,
                **extra,
                "DJANGO_SETTINGS_MODULE": "bench.settings_tenant",
                "FOUNDRY_BIND": f"127.0.0.1:{port}",
                "FOUNDRY_WEB_WORKERS": "2",
                "FOUNDRY_ACCESS_LOG": "0",
            }
            proc = serve(command, server_env, port=port, probe="/bench/one-query", host=HOST)
            try:
                for path in ENDPOINTS:
                    wrk_load(port, path, HOST, duration=1, connections=args.connections, threads=2)  # warm-up
                    results[server, path] = wrk_load(
                        port, path, HOST, duration=args.duration, connections=args.connections, threads=2
                    )
            finally:
                stop(proc)

    print(
        f"\nWeb servers, 2 workers each, wrk 2 threads x {args.connections} keep-alive connections, "
        f"{args.duration}s, {os.cpu_count()} cores"
    )
    for path, label in ENDPOINTS.items():
        base = results["gunicorn sync", path].rps
        print(f"\n  GET {path} ({label})")
        print(f"  {'server':<28}{'req/s':>9}{'vs sync':>9}{'p50':>10}{'p99':>10}")
        for server in SERVERS:
            r = results[server, path]
            print(f"  {server:<28}{r.rps:>9,.0f}{r.rps / base:>8.2f}x{r.p50:>10}{r.p99:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
