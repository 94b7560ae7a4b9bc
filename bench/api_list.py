"""Latency of an API list endpoint over 10,000 rows, with and without a filter.

Loads a tenant with --rows members (the list resource that exists today; runs will use the
same machinery), serves the app with the production server settings (gunicorn gthread), and
measures GET /api/v1/members with wrk: a plain first page (the baseline) and a filtered,
ordered, paged request, in the same run.

    bin/dev bench bench/api_list.py [--rows 10000] [--duration 5] [--connections 4]

Target: p50 ≤ 15 ms with filter + order + page. Exits 1 if missed. Uses its own database.
"""

import argparse
import sys
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import bench_database, free_port, manage, manage_shell, serve, stop, verdict, wrk_load

HOST = "acme.localhost"
FILTERED = {
    "filter": 'role = (developer OR operator) AND email = "user1*" AND is_active = true',
    "order_by": "date_joined desc",
    "page_size": "50",
}


def _load_rows(env: dict[str, str], rows: int) -> str:
    script = f"""
import random
from datetime import timedelta
from django.utils import timezone
from django_tenants.utils import schema_context
from apps.accounts.models import User
from apps.tokens.services import token_issue
rng = random.Random(1)
roles = ["owner", "admin", "developer", "operator", "viewer"]
now = timezone.now()
with schema_context("acme"):
    User.objects.bulk_create(
        User(email=f"user{{i}}@acme.test", role=rng.choice(roles), password="!",
             date_joined=now - timedelta(minutes=i), is_active=rng.random() < 0.9)
        for i in range({rows})
    )
    print(token_issue(actor="bench", name="bench", role="admin", scopes=["read"]).plaintext)
"""
    manage(env, "create_tenant", "acme", "--name", "Acme", "--owner-email", "o@acme.test", quiet=True)
    return manage_shell(env, script)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=1, help="1 measures latency without queueing")
    args = parser.parse_args()

    with bench_database("foundry_bench_api_list") as env:
        token = _load_rows(env, args.rows)
        port = free_port()
        server_env = {**env, "FOUNDRY_BIND": f"127.0.0.1:{port}", "FOUNDRY_ACCESS_LOG": "0"}
        command = [sys.executable, "-m", "gunicorn", "foundry.wsgi", "--config", "foundry/gunicorn.conf.py"]
        proc = serve(command, server_env, port=port, probe="/healthz", host=HOST)
        paths = {
            "baseline (first page)": "/api/v1/members",
            "filter + order + page": "/api/v1/members?" + urlencode(FILTERED),
        }
        results = {}
        try:
            for name, path in paths.items():
                wrk_load(port, path, HOST, duration=1, connections=args.connections, auth=token)  # warm-up
                results[name] = wrk_load(
                    port, path, HOST, duration=args.duration, connections=args.connections, auth=token
                )
        finally:
            stop(proc)

    print(
        f"\nAPI list over {args.rows:,} members, gunicorn gthread 2x4, wrk {args.connections} connections, "
        f"{args.duration}s each"
    )
    for name, r in results.items():
        print(f"  {name:<24} {r.rps:>8,.0f} req/s   p50 {r.p50:>9}   p99 {r.p99:>9}")
    base, filtered = results["baseline (first page)"], results["filter + order + page"]
    print(f"  filtered / baseline throughput: {filtered.rps / base.rps:.2f}")
    print("\nTargets")
    p50_ms = _ms(filtered.p50)
    ok = verdict(f"p50 ≤ 15 ms with filter + order + page ({p50_ms:.2f} ms)", p50_ms <= 15)
    return 0 if ok else 1


def _ms(text: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


if __name__ == "__main__":
    sys.exit(main())
