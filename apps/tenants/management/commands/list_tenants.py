import json

from django.core.management.base import BaseCommand

from apps.tenants.selectors import tenant_list


class Command(BaseCommand):
    help = "List tenants with their status, plan and domains."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="One JSON object per line.")

    def handle(self, *args, **options):
        for t in tenant_list():
            row = {
                "slug": t.slug,
                "name": t.name,
                "plan": t.plan,
                "status": t.status,
                "members": t.member_count,
                "created_at": t.created_at.isoformat(),
                "domains": [d.domain for d in t.domains.all()],
            }
            if options["json"]:
                self.stdout.write(json.dumps(row))
            else:
                domains = ", ".join(row["domains"])
                self.stdout.write(f"{t.slug:<24} {t.status:<10} {t.plan:<11} {t.member_count:>4}  {domains}")
