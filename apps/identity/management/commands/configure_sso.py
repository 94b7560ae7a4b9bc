import argparse
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from apps.audit.history import history_actor
from apps.identity.models import DEFAULT_SCOPES
from apps.identity.services import MAX_SECRET_CHARS, role_map_parse, sso_configure
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_get
from foundry.cli import file_path
from foundry.errors import ServiceError

ACTOR = "cli:configure_sso"


class Command(BaseCommand):
    help = (
        "Set a tenant's single sign-on (OIDC) configuration, replacing the stored one; the issuer's "
        "discovery document is fetched and checked first (docs/sso.md). The client secret is read from "
        "a file so that it never lands in shell history."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--issuer", required=True)
        parser.add_argument("--client-id", required=True)
        parser.add_argument(
            "--client-secret-file", type=file_path, metavar="PATH", help="Required the first time; omit to keep it."
        )
        parser.add_argument("--scopes", default=DEFAULT_SCOPES)
        parser.add_argument("--allowed-domain", action="append", default=[], metavar="DOMAIN")
        parser.add_argument("--roles-claim", default="")
        parser.add_argument("--role-map", action="append", default=[], metavar="VALUE=ROLE")
        parser.add_argument("--audience", default="", help="Audience of API access tokens (default: the client id).")
        parser.add_argument("--jit", action=argparse.BooleanOptionalAction, default=True)
        parser.add_argument("--sso-required", action="store_true")
        parser.add_argument("--break-glass", default="", metavar="EMAIL")

    def handle(self, *args, slug, client_secret_file, **options):
        try:
            tenant = tenant_get(slug=slug)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant with slug {slug!r}.") from None
        secret = _read_secret(client_secret_file) if client_secret_file else None
        try:
            role_map = role_map_parse(options["role_map"])
            with schema_context(tenant.schema_name), history_actor(ACTOR):
                config = sso_configure(
                    actor=ACTOR,
                    issuer=options["issuer"],
                    client_id=options["client_id"],
                    client_secret=secret,
                    scopes=options["scopes"],
                    allowed_domains=options["allowed_domain"],
                    roles_claim=options["roles_claim"],
                    role_map=role_map,
                    audience=options["audience"],
                    jit_enabled=options["jit"],
                    sso_required=options["sso_required"],
                    break_glass_email=options["break_glass"],
                )
        except ValidationError as exc:
            raise CommandError(_describe(exc)) from None
        except ServiceError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from None
        self.stdout.write(
            f"Tenant {tenant.slug}: single sign-on via {config.issuer} (client {config.client_id}, "
            f"signatures {', '.join(config.signing_algs)})."
        )


def _read_secret(path: Path) -> str:
    try:
        raw = path.read_bytes()[: MAX_SECRET_CHARS * 4 + 2]
        return raw.decode("utf-8").strip()
    except (OSError, UnicodeError) as exc:
        raise CommandError(f"Cannot read the client secret from {path}: {exc}.") from None


def _describe(exc: ValidationError) -> str:
    if not hasattr(exc, "error_dict"):
        return "; ".join(f"{e.message} ({e.code})" for e in exc.error_list)
    return "; ".join(
        f"{field}: {error.message} ({error.code})" for field, errors in exc.error_dict.items() for error in errors
    )
