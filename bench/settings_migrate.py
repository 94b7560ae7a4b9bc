"""foundry.settings with the multiprocessing migration executor's pool size set by the bench.

Used only by `bench/tenant_provisioning.py --processes P`, which passes P in
FOUNDRY_BENCH_MIGRATE_PROCESSES.
"""

import os

from foundry.settings import *  # noqa: F403

TENANT_MULTIPROCESSING_MAX_PROCESSES = int(os.environ["FOUNDRY_BENCH_MIGRATE_PROCESSES"])
