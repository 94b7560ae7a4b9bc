import getpass

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.services import email_clean
from apps.audit.history import history_actor
from apps.audit.services import audit_record


class Command(BaseCommand):
    help = "Create a platform operator (public schema), who signs in on the bare base domain."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--password", help="Prompted for when omitted.")

    def handle(self, *args, email, password, **options):
        try:
            email = email_clean(email)
        except ValidationError:
            raise CommandError(f"{email!r} is not a valid email address.") from None
        if not password:
            try:
                password = getpass.getpass("Password: ")
            except (EOFError, KeyboardInterrupt):  # no terminal to ask on (cron, a script, </dev/null)
                raise CommandError("No password given and none could be asked for: use --password.") from None
        with schema_context("public"), history_actor("cli:create_operator"):
            if User.objects.filter(email=email).exists():
                raise CommandError(f"An operator {email} already exists.")
            try:
                validate_password(password, User(email=email))
            except ValidationError as e:
                raise CommandError(" ".join(e.messages)) from None
            user = User.objects.create_user(email, password, is_staff=True)
            audit_record(action="operator.created", actor="cli:create_operator", target=user)
        self.stdout.write(f"Operator {email} created.")
