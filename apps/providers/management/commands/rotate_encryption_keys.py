from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from apps.audit.delivery import sink_secrets_rotate
from apps.audit.history import history_actor
from apps.audit.models import PLATFORM, Outcome
from apps.audit.services import audit_record
from apps.identity.services import sso_secret_rotate
from apps.providers.encryption import encryption_available
from apps.providers.services import credentials_rotate
from apps.tenants.selectors import tenant_list
from apps.tokens.idempotency import idempotency_keys_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every tenant's provider credentials, SSO client secret, audit sink secrets and stored answers to "
        "Idempotency-Key requests under the "
        "first key of "
        "FOUNDRY_ENCRYPTION_KEYS. "
        "Idempotent; run it after putting a new key first, before removing the old one (docs/providers.md)."
    )

    def handle(self, *args, **options):
        if not encryption_available():
            raise CommandError("FOUNDRY_ENCRYPTION_KEYS is empty: there is no key to rotate to.")
        rotated = current = 0
        failed: list[str] = []
        for tenant in tenant_list():
            with schema_context(tenant.schema_name), history_actor("cli:rotate_encryption_keys"):
                counts = credentials_rotate()
                sso_rotated, sso_current, sso_undecryptable = sso_secret_rotate()
                answers = idempotency_keys_rotate()
            with history_actor("cli:rotate_encryption_keys"):  # sinks are public rows
                sinks_rotated, sinks_current, sinks_undecryptable = sink_secrets_rotate(tenant.pk)
            counts.rotated += sso_rotated + sinks_rotated + answers.rotated
            counts.current += sso_current + sinks_current + answers.current
            counts.undecryptable += answers.undecryptable
            if sso_undecryptable:
                counts.undecryptable.append("sso")
            counts.undecryptable += sinks_undecryptable
            rotated, current = rotated + counts.rotated, current + counts.current
            failed += [f"{tenant.slug}/{provider}" for provider in counts.undecryptable]
            if counts.rotated or counts.undecryptable:
                self.stdout.write(
                    f"{tenant.slug}: {counts.rotated} re-encrypted, {counts.current} already current, "
                    f"{len(counts.undecryptable)} undecryptable"
                )
        self.stdout.write(f"{rotated} re-encrypted, {current} already current, {len(failed)} undecryptable.")
        data = {"rotated": rotated, "current": current, "undecryptable": failed[:100]}
        audit_record(
            action="encryption_keys.rotated",
            actor="cli:rotate_encryption_keys",
            target=("platform", "encryption_keys"),
            data=data,
            outcome=Outcome.FAILURE if failed else Outcome.SUCCESS,
            chain=PLATFORM,
        )
        if failed:
            raise CommandError(
                "No configured key decrypts these credentials (was a key removed before rotating?): "
                + ", ".join(failed)
                + ". Put the old key back in FOUNDRY_ENCRYPTION_KEYS and run again, or set these credentials anew."
            )
