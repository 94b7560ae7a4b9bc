from django.core.management.base import BaseCommand, CommandError

from foundry.celery_signing import VALID_DAYS, SigningKeyError, signing_keys_create
from foundry.cli import file_name


class Command(BaseCommand):
    help = (
        "Create the RSA key (mode 0600) and self-signed certificate that sign Celery messages in DIR, "
        "unless both are there, and print the environment lines that point every process at them. "
        "Rotation: create a new pair in another directory (docs/operations/deployment.md)."
    )
    # Runs before the files exist, when the signing check would stop any command.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--dir", type=file_name, required=True, help="directory for celery-signing.key and celery-signing.crt"
        )
        parser.add_argument("--days", type=int, default=VALID_DAYS, help="certificate lifetime for a new pair")

    def handle(self, *args, **options):
        try:
            files = signing_keys_create(options["dir"], days=options["days"])
        except (SigningKeyError, OSError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(files.env_lines(), ending="")
