"""Child process of bench/tenant_provisioning.py: provisions tenants in one database on request.

Django is set up once per process and talks to one database, so the benchmark runs one of
these per database and interleaves their work. Reads commands on stdin, answers one line each:

    fill N            provision with "clone" until N tenants exist   -> the count
    create METHOD     provision one tenant with METHOD ("clone"/"function"/"migrate") -> seconds
    executor          -> JSON: the multiprocessing migration executor's settings in effect

    DATABASE_URL=... python -m bench._provisioner
"""

import json
import os
import sys
import time


def main() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "foundry.settings"
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection, connections

    from apps.tenants.models import Tenant
    from apps.tenants.services import tenant_provision

    count = Tenant.objects.count()

    def create(method: str) -> float:
        nonlocal count
        slug = f"t{count:05d}"
        # A fresh database session for every tenant, connected before the clock starts. One
        # PostgreSQL session that has created many schemas gets slower at creating more (its
        # catalog caches grow), which would pass for growth with the number of tenants.
        connection.close()
        connection.ensure_connection()
        started = time.perf_counter()
        # No owner_password: no password hashing, which would dwarf everything else.
        tenant_provision(slug=slug, name=slug, owner_email=f"owner@{slug}.test", method=method)
        count += 1
        return time.perf_counter() - started

    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "fill":
            while count < int(arg):
                create("clone")
            print(count, flush=True)
        elif command == "create" and arg in ("clone", "function", "migrate"):
            print(f"{create(arg):.6f}", flush=True)
        elif command == "executor":  # defaults as in django_tenants/migration_executors/multiproc.py
            processes = getattr(settings, "TENANT_MULTIPROCESSING_MAX_PROCESSES", 2)
            chunks = getattr(settings, "TENANT_MULTIPROCESSING_CHUNKS", 2)
            print(json.dumps({"processes": processes, "chunks": chunks}), flush=True)
        else:
            sys.exit(f"unknown command {line!r}")
    connections.close_all()


if __name__ == "__main__":
    main()
