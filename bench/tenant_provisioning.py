"""How long creating a tenant takes, and whether it stays flat as tenants accumulate.

Provisions tenants (with `tenant_provision`, the production service: row, schema, domain,
owner, audit events) until --n exist, and prints the median time to create one when about 10
and about N exist, for the production method (clone the prepared base schema) and for the
baseline (run every migration), measured in the same run. Then the wall time of a no-op
`migrate_schemas` over all N schemas with the standard and the multiprocessing executor.

    bin/dev bench bench/tenant_provisioning.py [--n 200] [--window 10] [--migrate-window 5]

Targets: clone median ≤ 0.5 s; clone median at N within 1.5x of the median at 10.
Exits 1 if a target is missed. Uses its own database, dropped at the end.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import bench_database, manage, verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="tenants to reach (default 200)")
    parser.add_argument("--window", type=int, default=10, help="clone creations timed at each end")
    parser.add_argument("--migrate-window", type=int, default=5, help="migrate creations timed at each end")
    args = parser.parse_args()
    if args.n < 2 * args.window + 2 * args.migrate_window + 10:
        parser.error("--n is too small for the timing windows")

    with bench_database("foundry_bench_provisioning") as env:
        os.environ.update(env)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "foundry.settings")
        import django

        django.setup()
        from apps.tenants.services import tenant_provision

        count = 0
        times: dict[tuple[str, str], list[float]] = {}

        def create(method: str, phase: str | None) -> None:
            nonlocal count
            slug = f"t{count:05d}"
            started = time.perf_counter()
            tenant_provision(slug=slug, name=slug, owner_email=f"owner@{slug}.test", method=method)
            elapsed = time.perf_counter() - started
            count += 1
            if phase:
                times.setdefault((method, phase), []).append(elapsed)

        create("clone", None)  # first call pays imports and connection set-up
        while count < 10 - args.window // 2:
            create("clone", None)
        for _ in range(args.window):
            create("clone", "at 10")
        for _ in range(args.migrate_window):
            create("migrate", "at 10")
        late_start = args.n - args.window - args.migrate_window
        while count < late_start:
            create("clone", None)
            if count % 50 == 0:
                print(f"  … {count} tenants", flush=True)
        for _ in range(args.migrate_window):
            create("migrate", f"at {args.n}")
        for _ in range(args.window):
            create("clone", f"at {args.n}")

        med = {key: statistics.median(values) for key, values in times.items()}
        early, late = "at 10", f"at {args.n}"
        print(f"\nTenant provisioning, {count} tenants created (median seconds per tenant)")
        print(f"  {'method':<10}{early:>12}{late:>12}{'late/early':>12}")
        for method in ("clone", "migrate"):
            m_early, m_late = med[(method, early)], med[(method, late)]
            print(f"  {method:<10}{m_early:>12.3f}{m_late:>12.3f}{m_late / m_early:>11.2f}x")
        speedup = med[("migrate", late)] / med[("clone", late)]
        print(f"  clone is {speedup:.1f}x faster than migrate (baseline) at {args.n} tenants")

        noop = {}
        for executor in ("standard", "multiprocessing"):
            noop[executor] = manage(env, "migrate_schemas", "--tenant", "--executor", executor, "--verbosity", "0")
        print(f"\nNo-op migrate_schemas over {count} tenant schemas (seconds)")
        for executor, seconds in noop.items():
            print(f"  {executor:<16}{seconds:>8.1f}")
        print(f"  multiprocessing/standard: {noop['multiprocessing'] / noop['standard']:.2f}x")

        print("\nTargets")
        ok = verdict(
            f"clone median ≤ 0.5 s (at 10: {med[('clone', early)]:.3f} s, at {args.n}: {med[('clone', late)]:.3f} s)",
            max(med[("clone", early)], med[("clone", late)]) <= 0.5,
        )
        ratio = med[("clone", late)] / med[("clone", early)]
        ok &= verdict(f"clone median at {args.n} ≤ 1.5x median at 10 ({ratio:.2f}x)", ratio <= 1.5)
        from django.db import connections

        connections.close_all()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
