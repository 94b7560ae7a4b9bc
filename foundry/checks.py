"""`manage.py check --deploy`: platform settings a production deployment needs, named before the
first request finds them missing (each part answers 503 without its key, and a proxy whose
addresses are not listed makes every visitor one client)."""

from django.conf import settings
from django.core.checks import Warning, register


@register(deploy=True)
def platform_keys_configured(app_configs, **kwargs):
    """The keys bin/dev generates for development, which a production environment must bring."""
    missing = []
    if not settings.FOUNDRY_ENCRYPTION_KEYS:
        missing.append(
            Warning(
                "FOUNDRY_ENCRYPTION_KEYS is not set: provider credentials, SSO client secrets and webhook "
                "secrets cannot be stored (every attempt answers 503 encryption_not_configured).",
                hint="Set one or more Fernet keys, comma-separated, the first encrypting (docs/providers.md).",
                id="foundry.W002",
            )
        )
    if not settings.FOUNDRY_SERVICE_SIGNING_KEYS:
        missing.append(
            Warning(
                "FOUNDRY_SERVICE_SIGNING_KEYS is not set: no service token can be issued "
                "(503 service_keys_not_configured) and /.well-known/jwks.json publishes no key.",
                hint="Set key_id:<base64 of a 32-byte Ed25519 seed> (docs/sso.md).",
                id="foundry.W003",
            )
        )
    return missing


@register(deploy=True)
def proxy_addresses_configured(app_configs, **kwargs):
    """Behind a TLS proxy with no FOUNDRY_TRUSTED_PROXIES, X-Forwarded-For is ignored: every visitor
    has the proxy's address, in the audit trail and for sign-in limits, where five wrong passwords
    from anyone lock a member out for everyone."""
    if not getattr(settings, "SECURE_PROXY_SSL_HEADER", None) or settings.FOUNDRY_TRUSTED_PROXIES:
        return []
    return [
        Warning(
            "FOUNDRY_BEHIND_TLS_PROXY is on but FOUNDRY_TRUSTED_PROXIES is empty: every client's address is "
            "the proxy's, for sign-in limits, the audit trail and the logs.",
            hint="List the proxies' addresses (CIDRs) in FOUNDRY_TRUSTED_PROXIES (docs/operations/deployment.md).",
            id="foundry.W004",
        )
    ]
