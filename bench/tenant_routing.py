"""What tenant routing costs per request, under a real server and a real load generator.

Serves a JSON endpoint doing one query (count of users; bench/routing_app.py) with gunicorn on
a free loopback port and loads it with wrk, in three variants measured in the same run:

- tenant: production middleware (bench/settings_tenant.py) at acme.localhost; the host is
  routed to the tenant, the query reads the tenant's schema;
- no-tenant (the baseline): the same stack without TenantRoutingMiddleware
  (bench/settings_no_tenant.py); the query reads the public schema;
- tenant, 2 hosts (informational): the tenant server, requests alternating between
  acme.localhost and globex.localhost, so connections keep changing schema.

Variants alternate round by round (order rotated); req/s and the gunicorn workers' CPU time per
request are medians over rounds, and ratios against no-tenant are medians of per-round ratios, so
background load drifting during the run mostly cancels out (CPU per request is the steadier of
the two on a shared machine).

Server: foundry/gunicorn.conf.py with FOUNDRY_WEB_WORKERS workers, access log off, DEBUG off,
overridden to gthread with --threads threads per worker (default 1, so a worker serves one
request at a time like a sync worker, but keeps connections alive: a sync worker closes every
connection, and wrk then measures TCP connection churn, including 1 s SYN retransmits on
reused loopback ports) and --max-requests 0 (no worker recycling mid-run).

It also counts the round trips one request costs (PostgreSQL and Redis, on the wire; see
bench/_request_trace.py) for both variants and for the tenant's cache states.

    .venv/bin/python bench/tenant_routing.py [--workers 1 2] [--threads 1] [--connections 8]
                                             [--duration 5] [--rounds 5] [--warmup 2]

(or `bin/dev bench bench/tenant_routing.py ...`). Targets, each printed PASS/FAIL, exit 1 if
one is missed: tenant req/s ≥ 0.8x no-tenant req/s, for every worker count; a warm tenant
request costs no more SQL round trips than a no-tenant one. Needs wrk (installed with apt-get
when run as root). Uses its own database, foundry_bench_routing, dropped at the end.
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (
    ROOT,
    Load,
    bench_database,
    children_cpu_seconds,
    free_port,
    manage,
    serve,
    stop,
    verdict,
    wrk_load,
    wrk_path,
)

PATH = "/bench/one-query"
HOST = "acme.localhost"
OTHER_HOST = "globex.localhost"
TARGET_RATIO = 0.8


@dataclass(frozen=True)
class Run:
    load: Load
    cpu_ms: float  # CPU time of the gunicorn workers per request served


@dataclass(frozen=True)
class Variant:
    name: str
    settings: str
    hosts: tuple[str, ...]
    users: int  # what the endpoint must answer: proves which schema was read


TENANT = Variant("tenant", "bench.settings_tenant", (HOST,), users=1)
BASELINE = Variant("no-tenant", "bench.settings_no_tenant", (HOST,), users=0)
SWITCHING = Variant("tenant, 2 hosts", "bench.settings_tenant", (HOST, OTHER_HOST), users=1)
VARIANTS = (BASELINE, TENANT, SWITCHING)

# wrk sends the Host of -H on every request; this script alternates hosts instead.
ALTERNATE_HOSTS_LUA = """
local hosts = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "%s", {["Host"] = hosts[i %% #hosts + 1]})
end
"""


def _serve(env: dict[str, str], settings: str, workers: int, threads: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server_env = {
        **env,
        "DJANGO_SETTINGS_MODULE": settings,
        "FOUNDRY_BIND": f"127.0.0.1:{port}",
        "FOUNDRY_WEB_WORKERS": str(workers),
        "FOUNDRY_WEB_THREADS": str(threads),
        "FOUNDRY_ACCESS_LOG": "0",
    }
    command = [
        *(sys.executable, "-m", "gunicorn", "foundry.wsgi", "--config", "foundry/gunicorn.conf.py"),
        *("--worker-class", "gthread", "--threads", str(threads), "--max-requests", "0"),
    ]
    return serve(command, server_env, port=port, probe=PATH, host=HOST), port


def _check_server(port: int, variant: Variant) -> None:
    """Fail unless the server keeps the connection alive and reads the schema it should."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for host in variant.hosts * 2:
            conn.request("GET", PATH, headers={"Host": host})
            response = conn.getresponse()
            body = response.read()
            if response.status != 200 or json.loads(body) != {"users": variant.users}:
                sys.exit(f"{variant.name}: {host}{PATH} answered {response.status} {body!r}")
            if response.will_close:
                sys.exit(f"{variant.name}: the server closes connections; wrk would measure reconnects")
    finally:
        conn.close()


def _load(
    server: subprocess.Popen, port: int, variant: Variant, script: Path, *, duration: int, connections: int
) -> Run:
    """One wrk run against `server`, with the CPU time its workers spent per request."""
    cpu_before = children_cpu_seconds(server.pid)
    load = wrk_load(
        port,
        PATH,
        variant.hosts[0],
        duration=duration,
        connections=connections,
        script=script if len(variant.hosts) > 1 else None,
    )
    cpu = children_cpu_seconds(server.pid) - cpu_before
    return Run(load=load, cpu_ms=1000 * cpu / max(load.requests, 1))


def _trace(env: dict[str, str], settings: str, *cases: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench._request_trace", PATH, HOST, OTHER_HOST, *cases],
        env={**env, "DJANGO_SETTINGS_MODULE": settings},
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="gunicorn worker counts to try")
    parser.add_argument("--threads", type=int, default=1, help="gthread threads per worker (default 1)")
    parser.add_argument("--connections", type=int, default=8, help="wrk keep-alive connections")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs per variant")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up load per variant")
    args = parser.parse_args()
    wrk_path()  # fail before creating anything if wrk is missing

    load_at_start = os.getloadavg()[0]
    runs: dict[tuple[int, str], list[Run]] = {}
    with bench_database("foundry_bench_routing") as env, tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "alternate_hosts.lua"
        script.write_text(ALTERNATE_HOSTS_LUA % (", ".join(f'"{h}"' for h in SWITCHING.hosts), PATH))
        for slug, host in (("acme", HOST), ("globex", OTHER_HOST)):
            manage(env, "create_tenant", slug, "--name", slug.title(), "--owner-email", f"owner@{host}", quiet=True)
        tenant_trips = _trace(env, TENANT.settings, "warm", "switch", "expired", "cold")
        baseline_trips = _trace(env, BASELINE.settings, "warm")
        if tenant_trips["debug"] or baseline_trips["debug"]:
            sys.exit("DEBUG is on in the bench settings; the figures would mean nothing")

        for workers in args.workers:
            print(f"  … {workers} worker(s)", flush=True)
            servers = {
                settings: _serve(env, settings, workers, args.threads)
                for settings in {variant.settings for variant in VARIANTS}
            }
            try:
                for variant in VARIANTS:
                    server, port = servers[variant.settings]
                    _check_server(port, variant)
                    _load(server, port, variant, script, duration=args.warmup, connections=args.connections)
                for round_ in range(args.rounds):
                    shift = round_ % len(VARIANTS)
                    for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                        server, port = servers[variant.settings]
                        run = _load(server, port, variant, script, duration=args.duration, connections=args.connections)
                        runs.setdefault((workers, variant.name), []).append(run)
            finally:
                for proc, _port in servers.values():
                    stop(proc)

    print(
        f"\nTenant routing: GET {PATH} (one query) — gunicorn gthread x {args.threads} thread(s) per worker, "
        f"keep-alive, access log and DEBUG off; wrk -t1 -c{args.connections}, {args.rounds} alternating "
        f"rounds x {args.duration} s after {args.warmup} s warm-up; {os.cpu_count()} CPUs, "
        f"load average {load_at_start:.1f} at start"
    )
    width = max(len(", ".join(f"{run.load.rps:,.0f}" for run in mine)) for mine in runs.values()) + 2
    print(
        f"\n  {'workers':<8}{'variant':<17}{'req/s':>7}  {'runs':<{width}}{'p50':>9}{'p99':>9}"
        f"{'CPU ms/req':>12}{'req/s vs':>10}{'CPU vs':>8}"
    )
    ratios: dict[int, float] = {}
    for workers in args.workers:
        base_runs = runs[workers, BASELINE.name]
        for variant in VARIANTS:
            mine = runs[workers, variant.name]
            rps = statistics.median(run.load.rps for run in mine)
            cpu = statistics.median(run.cpu_ms for run in mine)
            # Paired by round (adjacent in time), so drifting background load mostly cancels out.
            rps_ratio = statistics.median(a.load.rps / b.load.rps for a, b in zip(mine, base_runs, strict=True))
            cpu_ratio = statistics.median(a.cpu_ms / b.cpu_ms for a, b in zip(mine, base_runs, strict=True))
            middle = sorted(mine, key=lambda run: run.load.rps)[len(mine) // 2].load
            runs_txt = ", ".join(f"{run.load.rps:,.0f}" for run in mine)
            print(
                f"  {workers:<8}{variant.name:<17}{rps:>7,.0f}  {runs_txt:<{width}}{middle.p50:>9}{middle.p99:>9}"
                f"{cpu:>12.2f}{rps_ratio:>9.2f}x{cpu_ratio:>7.2f}x"
            )
            if variant is TENANT:
                ratios[workers] = rps_ratio
    print(
        "  (req/s and CPU: medians over rounds; ratios vs no-tenant: medians of per-round ratios. "
        "CPU: gunicorn workers only, not PostgreSQL)"
    )

    cases = [
        ("no-tenant", baseline_trips["warm"]),
        ("tenant, warm (route cached, same schema)", tenant_trips["warm"]),
        ("tenant, hosts alternating (schema switch)", tenant_trips["switch"]),
        ("tenant, process route cache expired", tenant_trips["expired"]),
        ("tenant, route cached nowhere", tenant_trips["cold"]),
    ]
    print("\n  Round trips per request (Django's WSGI handler in-process; libpq trace, redis-py sends)")
    print(f"  {'case':<44}{'SQL':>5}{'Redis':>7}")
    for label, case in cases:
        print(f"  {label:<44}{case['sql_round_trips']:>5g}{case['redis_round_trips']:>7g}")
        for sql, per_request in case["statements"].items():
            text = sql if len(sql) <= 84 else sql[:81] + "..."
            print(f"  {'':<6}{per_request:>4g} x {text}")
    print(
        "  (SELECT 1 is CONN_HEALTH_CHECKS' check of the persistent connection; the process route cache "
        "expires every FOUNDRY_TENANT_ROUTE_TTL seconds)"
    )

    print("\nTargets")
    ok = True
    for workers, ratio in ratios.items():
        label = f"{workers} worker(s): tenant / no-tenant req/s ≥ {TARGET_RATIO} ({ratio:.2f})"
        ok &= verdict(label, ratio >= TARGET_RATIO)
    warm, base = tenant_trips["warm"]["sql_round_trips"], baseline_trips["warm"]["sql_round_trips"]
    ok &= verdict(f"warm tenant request: no SQL round trip more than no-tenant ({warm:g} vs {base:g})", warm <= base)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
