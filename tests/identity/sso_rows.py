"""A workspace's SSO configuration written as a row, without discovery: for tests that need one to
exist (its provider is never asked)."""

from django.utils import timezone
from django_tenants.utils import schema_context

from apps.identity.models import SsoConfiguration


def sso_stored(tenant, issuer: str, **fields) -> SsoConfiguration:
    """`tenant`'s configuration naming `issuer` and its endpoints under it; `fields` override."""
    now = timezone.now()
    with schema_context(tenant.schema_name):
        return SsoConfiguration.objects.create(
            **{
                "issuer": issuer,
                "client_id": "foundry",
                "client_secret_encrypted": "-",
                "authorization_endpoint": f"{issuer}/auth",
                "token_endpoint": f"{issuer}/token",
                "jwks_uri": f"{issuer}/jwks",
                "discovered_at": now,
                "updated_at": now,
                **fields,
            }
        )
