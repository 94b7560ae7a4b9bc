from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.billing.statements import FORMATS, format_parse, period_parse, statement
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_get
from foundry.cli import file_name
from foundry.errors import ServiceError
from foundry.text import text_shown


class Command(BaseCommand):
    help = (
        "A tenant's usage statement (by project, agent and model) of a month or a range of days, "
        "as CSV or JSON, to stdout or a file. Nothing is written when the period is refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, metavar="SLUG")
        parser.add_argument("--month", default=None, metavar="YYYY-MM", help="default: the current month (UTC)")
        parser.add_argument("--start", default=None, metavar="YYYY-MM-DD", help="instead of --month: the first day")
        parser.add_argument("--end", default=None, metavar="YYYY-MM-DD", help="with --start: the last day, included")
        parser.add_argument("--format", dest="fmt", default="csv", choices=FORMATS)
        parser.add_argument("--output", type=file_name, default=None, metavar="PATH", help="a file (default: stdout)")

    def handle(self, *args, tenant, month, start, end, fmt, output, **options):
        try:
            period = period_parse(month=month, start=start, end=end)
            fmt = format_parse(fmt)
        except ServiceError as e:
            raise CommandError(f"{e.code}: {e.message}") from None
        try:
            found = tenant_get(slug=tenant)
        except Tenant.DoesNotExist:
            raise CommandError(f"--tenant: no tenant {tenant!r}.") from None
        result = statement(tenant_id=found.pk, tenant_slug=found.slug, period=period)
        text = result.to_csv() if fmt == "csv" else result.to_json()
        if output is None:
            if self.stdout.isatty():  # names are the workspaces' text: no escape sequence reaches a terminal raw
                text = "\r\n".join(text_shown(line) for line in text.split("\r\n"))
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8", newline="")
        except OSError as e:
            raise CommandError(f"--output: {e.strerror or e}.") from None
        self.stderr.write(f"Statement {result.filename}.{fmt} written to {output}.")
