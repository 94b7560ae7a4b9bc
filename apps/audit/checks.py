from django.conf import settings
from django.core.checks import Warning, register


@register(deploy=True)
def audit_signing_configured(app_configs, **kwargs):
    """Without a signing key the chain heads are never signed, and a rewritten chain goes unseen."""
    if settings.FOUNDRY_AUDIT_SIGNING_KEYS:
        return []
    return [
        Warning(
            "FOUNDRY_AUDIT_SIGNING_KEYS is not set: audit chain heads will not be signed.",
            hint="Set key_id:<base64 of a 32-byte Ed25519 seed> (docs/audit.md).",
            id="foundry.W001",
        )
    ]
