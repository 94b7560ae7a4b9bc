"""How long creating a tenant takes, and whether it stays flat as tenants accumulate.

Provisions tenants with `apps.tenants.services.tenant_provision` (the production service: tenant
row, schema, domain, owner without a password, audit events, one transaction) and times it with
~10 tenants in the database and with ~N (--n), for the production method "clone" (copy the
prepared base schema `_foundry_base` by running its definition, pg_dump's), "function" (copy it
with django-tenants' clone function, which clones fall back to without a current definition) and
the baseline "migrate" (run every migration). Prints each median, migrate/clone (clone's speedup),
function/clone (the definition's) and median at N / median at 10 (the flatness).

To be fair under a busy machine, the two tenant counts live in two throwaway databases, each
served by its own process (bench/_provisioner.py): one is filled to N - w tenants, the other to
~10 - w/2 (w = the timed creations per window), then both windows are timed at once, creations
interleaved (few/many, method by method), so background load weighs on every figure alike.

Then the wall time of a no-op `manage.py migrate_schemas --tenant` over the N schemas, in a
fresh process, with django-tenants' standard executor and its multiprocessing one (a fork pool
of TENANT_MULTIPROCESSING_MAX_PROCESSES processes, default 2, mapping TENANT_MULTIPROCESSING_CHUNKS
schemas per task, default 2; --processes overrides the first through bench/settings_migrate.py),
and of a no-op `manage.py migrate_platform`, the command a deploy runs.

    .venv/bin/python bench/tenant_provisioning.py [--n 200] [--window 10] [--migrate-window 5]
                                                  [--processes P] [--skip-migrate-schemas]

(or `bin/dev bench bench/tenant_provisioning.py ...`). Targets, each printed PASS/FAIL, exit 1
if one is missed: clone median ≤ 0.5 s (at ~10 and at N); clone median at N ≤ 1.5x the median
at ~10. Uses its own databases, foundry_bench_provisioning_{few,many}, dropped at the end.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import ROOT, bench_database, manage, verdict

METHODS = ("clone", "function", "migrate")  # production method first; migrate is the baseline
LABELS = {"clone": "clone (production)", "function": "clone function", "migrate": "migrate (baseline)"}
MAX_SECONDS = 0.5
MAX_GROWTH = 1.5


class Provisioner:
    """A bench/_provisioner.py process provisioning tenants in one database."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench._provisioner"],
            env=env,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _ask(self, command: str) -> str:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            sys.exit(f"the provisioning process died on {command!r}")
        return answer

    def fill(self, n: int) -> int:
        """Provision (clone) until n tenants exist; return how many exist."""
        return int(self._ask(f"fill {n}"))

    def create(self, method: str) -> float:
        return float(self._ask(f"create {method}"))

    def executor_settings(self) -> dict[str, int]:
        return json.loads(self._ask("executor"))

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="tenants to reach (default 200)")
    parser.add_argument("--window", type=int, default=10, help="clone (and function) creations timed per window")
    parser.add_argument("--migrate-window", type=int, default=5, help="migrate creations timed in each window")
    parser.add_argument("--processes", type=int, help="TENANT_MULTIPROCESSING_MAX_PROCESSES for the no-op migrate")
    parser.add_argument("--skip-migrate-schemas", action="store_true", help="do not time the no-op migrate_schemas")
    args = parser.parse_args()
    per_window = 2 * args.window + args.migrate_window
    few_start = max(1, 10 - per_window // 2)  # so the window is centred on 10 tenants
    many_start = args.n - per_window  # so the window ends at N tenants
    if args.window < 1 or args.migrate_window < 1 or many_start < few_start + per_window:
        parser.error(f"--n must be at least {few_start + 2 * per_window} for these windows")
    early, late = "at ~10", f"at ~{args.n}"
    limits = {"clone": args.window, "function": args.window, "migrate": args.migrate_window}

    times: dict[tuple[str, str], list[float]] = {}
    with (
        bench_database("foundry_bench_provisioning_few") as few_env,
        bench_database("foundry_bench_provisioning_many") as many_env,
    ):
        few, many = Provisioner(few_env), Provisioner(many_env)
        try:
            few.fill(few_start)
            for target in [*range(50, many_start, 50), many_start]:
                print(f"  … {many.fill(target)} tenants", flush=True)
            # Both windows at once, interleaved (few/many, method by method), so whatever else the
            # machine does weighs on every figure alike.
            for i in range(max(limits.values())):
                pair = [(early, few), (late, many)]
                for method in METHODS:
                    if i < limits[method]:
                        for window, provisioner in pair if i % 2 == 0 else pair[::-1]:
                            times.setdefault((method, window), []).append(provisioner.create(method))
            few_count, count = few.fill(0), many.fill(0)
            executor_settings = many.executor_settings()
        finally:
            few.close()
            many.close()

        median = {key: statistics.median(values) for key, values in times.items()}
        print(
            f"\nTenant provisioning: median seconds per tenant_provision(), clone and function x {args.window}, "
            f"migrate x {args.migrate_window} per window, interleaved; windows {few_start}→{few_count} "
            f"and {many_start}→{count} tenants (two databases)"
        )
        print(f"  {'method':<20}{early:>10}{late:>10}{'late/early':>12}")
        for method in METHODS:
            m_early, m_late = median[method, early], median[method, late]
            print(f"  {LABELS[method]:<20}{m_early:>10.3f}{m_late:>10.3f}{m_late / m_early:>11.2f}x")
        speedups = [median["migrate", w] / median["clone", w] for w in (early, late)]
        print(f"  {'migrate / clone':<20}{speedups[0]:>9.1f}x{speedups[1]:>9.1f}x   (clone's speedup)")
        speedups = [median["function", w] / median["clone", w] for w in (early, late)]
        print(f"  {'function / clone':<20}{speedups[0]:>9.2f}x{speedups[1]:>9.2f}x   (the definition's speedup)")

        if not args.skip_migrate_schemas:
            processes = args.processes or executor_settings["processes"]
            mp_env = many_env
            if args.processes:
                mp_env = {
                    **many_env,
                    "DJANGO_SETTINGS_MODULE": "bench.settings_migrate",
                    "FOUNDRY_BENCH_MIGRATE_PROCESSES": str(args.processes),
                }
            tenant_migrate = ("migrate_schemas", "--tenant", "--verbosity", "0", "--executor")
            noop = {
                "standard": manage(many_env, *tenant_migrate, "standard"),
                "multiprocessing": manage(mp_env, *tenant_migrate, "multiprocessing"),
                # What a deploy runs: public, the base schema, then every tenant (standard executor).
                "migrate_platform": manage(many_env, "migrate_platform", "--verbosity", "0"),
            }
            labels = {
                "standard": "standard",
                "multiprocessing": f"multiprocessing ({processes} processes, chunks {executor_settings['chunks']})",
                "migrate_platform": "migrate_platform (public + base + tenants)",
            }
            print(f"\nNo-op migrate_schemas --tenant over {count} schemas (wall time of a fresh process)")
            print(f"  {'executor':<44}{'seconds':>8}{'per schema':>12}{'vs standard':>13}")
            for executor, seconds in noop.items():
                print(
                    f"  {labels[executor]:<44}{seconds:>8.1f}{seconds / count:>11.3f}s"
                    f"{seconds / noop['standard']:>12.2f}x"
                )
            print(f"  ({os.cpu_count()} CPUs)")

    print("\nTargets")
    clone_early, clone_late = median["clone", early], median["clone", late]
    ok = verdict(
        f"clone median ≤ {MAX_SECONDS} s ({early}: {clone_early:.3f} s, {late}: {clone_late:.3f} s)",
        max(clone_early, clone_late) <= MAX_SECONDS,
    )
    growth = clone_late / clone_early
    ok &= verdict(f"clone median {late} ≤ {MAX_GROWTH}x median {early} ({growth:.2f}x)", growth <= MAX_GROWTH)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
