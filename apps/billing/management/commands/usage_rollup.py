from datetime import date

from django.core.management.base import BaseCommand, CommandError

from apps.billing.rollups import rollup_days, today, usage_rollup
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_get, tenant_list


class Command(BaseCommand):
    help = (
        "Recompute the daily usage roll-up (UsageDay) from the ledger: a day (default: yesterday and "
        "today, as the hourly beat job does) of one tenant or all. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--day", default=None, metavar="YYYY-MM-DD", help="a day (UTC), not after today")
        parser.add_argument("--tenant", default=None, metavar="SLUG", help="one tenant (default: every tenant)")

    def handle(self, *args, day, tenant, **options):
        days = rollup_days() if day is None else [_day(day)]
        if tenant is None:
            tenant_ids = list(tenant_list().order_by("pk").values_list("pk", flat=True))
        else:
            try:
                tenant_ids = [tenant_get(slug=tenant).pk]
            except Tenant.DoesNotExist:
                raise CommandError(f"--tenant: no tenant {tenant!r}.") from None
        rows = sum(usage_rollup(tenant_id=tenant_id, day=one) for tenant_id in tenant_ids for one in days)
        self.stdout.write(
            f"Rolled up {', '.join(map(str, days))} for {len(tenant_ids)} tenant(s): {rows} row(s) written."
        )


def _day(value: str) -> date:
    try:
        day = date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise CommandError(f"--day: {value[:40]!r} is not a day YYYY-MM-DD.")
    if day > today():
        raise CommandError(f"--day: {day} is in the future.")
    return day
