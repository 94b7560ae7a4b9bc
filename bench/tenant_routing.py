"""What tenant routing costs per request, under a real server and load generator.

Serves a JSON endpoint doing one query (count of users) with gunicorn on loopback, once with
the production middleware stack on a tenant host (acme.localhost: host → tenant route, schema
switch) and once with the tenant middleware removed (the baseline, reading the public schema),
and loads each with wrk, alternating runs. Prints requests/s, latency, the ratio tenant /
baseline, and the SQL statements one tenant request issues.

    bin/dev bench bench/tenant_routing.py [--duration 5] [--rounds 3] [--workers 1] [--connections 8]

Target: ratio ≥ 0.8. Exits 1 if missed. Needs wrk (installed with apt-get when run as root).
Uses its own database, dropped at the end.
"""

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import ROOT, Load, bench_database, free_port, serve, stop, verdict, wrk_load

HOST = "acme.localhost"
PATH = "/bench/one-query"


def _serve(env: dict[str, str], settings: str, workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server_env = {
        **env,
        "DJANGO_SETTINGS_MODULE": settings,
        "FOUNDRY_BIND": f"127.0.0.1:{port}",
        "FOUNDRY_WEB_WORKERS": str(workers),
        "FOUNDRY_WEB_THREADS": "1",
        "FOUNDRY_ACCESS_LOG": "0",
    }
    command = [sys.executable, "-m", "gunicorn", "foundry.wsgi", "--config", "foundry/gunicorn.conf.py"]
    return serve(command, server_env, port=port, probe=PATH, host=HOST), port


def _queries_per_request(env: dict[str, str]) -> list[str]:
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings_tenant"
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST=HOST)
    client.get(PATH)  # warm: route cache and the connection's search_path
    with CaptureQueriesContext(connection) as queries:
        client.get(PATH)
    connection.close()
    return [q["sql"] for q in queries]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per variant")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn sync workers")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    args = parser.parse_args()

    with bench_database("foundry_bench_routing") as env:
        subprocess.run(
            [sys.executable, "manage.py", "create_tenant", "acme", "--name", "Acme", "--owner-email", "o@acme.test"],
            env=env,
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        variants = {"tenant": "bench.settings_tenant", "baseline": "bench.settings_no_tenant"}
        servers = {name: _serve(env, settings, args.workers) for name, settings in variants.items()}
        results: dict[str, list[Load]] = {name: [] for name in variants}
        try:
            for _proc, port in servers.values():
                wrk_load(port, PATH, HOST, duration=2, connections=args.connections)  # warm-up
            for _ in range(args.rounds):
                for name, (_proc, port) in servers.items():
                    results[name].append(
                        wrk_load(port, PATH, HOST, duration=args.duration, connections=args.connections)
                    )
        finally:
            for proc, _port in servers.values():
                stop(proc)
        sql = _queries_per_request(env)

    print(
        f"\nTenant routing: GET {PATH} (one query), gunicorn {args.workers} sync worker(s), "
        f"wrk 1 thread x {args.connections} connections, {args.rounds} x {args.duration}s alternating"
    )
    median = {}
    for name, runs in results.items():
        median[name] = statistics.median(run.rps for run in runs)
        runs_txt = ", ".join(f"{run.rps:,.0f}" for run in runs)
        last = runs[-1]
        print(
            f"  {name:<9} median {median[name]:>8,.0f} req/s  (runs: {runs_txt}; last p50 {last.p50}, p99 {last.p99})"
        )
    ratio = median["tenant"] / median["baseline"]
    print(f"  ratio tenant/baseline: {ratio:.2f}")
    print(f"  SQL per tenant request once warm: {len(sql)}")
    for statement in sql:
        print(f"    {statement[:100]}")
    print("\nTargets")
    ok = verdict(f"ratio ≥ 0.8 ({ratio:.2f})", ratio >= 0.8)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
