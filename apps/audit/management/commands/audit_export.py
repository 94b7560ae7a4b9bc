import json

from django.core.management.base import BaseCommand, CommandError

from apps.audit.export import (
    FORMATS,
    MAX_SEQ,
    audit_export_start,
    export_checkpoints,
    export_lines,
)
from apps.audit.models import PLATFORM
from apps.audit.services import checkpoint_dict
from apps.tenants.selectors import tenant_of_option
from foundry.cli import file_path
from foundry.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Export an audit chain as JSON lines or OCSF (docs/audit-siem.md): the events after --after, "
        "then the signed checkpoints that vouch for them. The export itself is recorded (audit.export)."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--tenant", metavar="SLUG", help="This tenant's chain.")
        which.add_argument("--platform", action="store_true", help="The platform's chain.")
        parser.add_argument("--format", choices=FORMATS, default="jsonl", help="jsonl (default) or ocsf.")
        parser.add_argument("--after", type=int, default=0, metavar="N", help="Events after sequence number N.")
        parser.add_argument("--output", type=file_path, metavar="FILE", help="Write here instead of stdout.")
        parser.add_argument(
            "--checkpoints",
            type=file_path,
            metavar="FILE",
            help="Write the signed checkpoints here (JSON lines, as `audit_verify --checkpoints` reads) "
            "instead of at the end of the export.",
        )

    def handle(self, *args, tenant=None, platform=False, format="jsonl", after=0, output=None, checkpoints=None, **_):
        # An empty slug (a script's unset variable) names no tenant: never the platform's chain.
        chain = PLATFORM if tenant is None else tenant_of_option(tenant).pk
        if not 0 <= after <= MAX_SEQ:
            raise CommandError("--after is a sequence number: a whole number from 0.")
        # The files first: an export that cannot be written is not recorded as made (audit.export).
        # Opened without emptying them: a refused export (its cursor past the chain's head) leaves
        # what they held — a previous export, say — as it was.
        files = [path for path in (output, checkpoints) if path is not None]
        made = [path for path in files if not path.exists()]
        opened = []
        try:
            for path in files:
                opened.append(path.open("a", encoding="utf-8"))
        except OSError as exc:
            self._abandon(opened, made)
            raise CommandError(f"{exc.filename}: {exc.strerror}.") from None
        out = opened[0] if output else None
        side = opened[-1] if checkpoints else None
        try:
            try:
                span = audit_export_start(tenant_id=chain, fmt=format, after=after, actor="cli:audit_export")
            except ServiceError as exc:
                self._abandon(opened, made)
                opened = []
                raise CommandError(f"{exc.message} ({exc.code})") from None
            for file in opened:  # the export is made: its files hold it alone
                file.truncate(0)
            for text in export_lines(span, fmt=format, checkpoints=side is None):
                if out is not None:
                    out.write(text)
                else:
                    self.stdout.write(text, ending="")
            if side is not None:
                for checkpoint in export_checkpoints(span):
                    side.write(json.dumps(checkpoint_dict(checkpoint), sort_keys=True) + "\n")
        finally:
            for file in opened:
                file.close()
        if out is not None or side is not None:
            self.stderr.write(f"Chain {span.tenant_id}: events #{span.after + 1} to #{span.through} exported.")

    @staticmethod
    def _abandon(opened, made) -> None:
        """Close the files, and remove those this run created: nothing written, nothing left."""
        for file in opened:
            file.close()
        for path in made:
            path.unlink(missing_ok=True)
