"""Configuring single sign-on on a workspace just made, whose owner has not joined yet."""

import io
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tenants.utils import schema_context

from apps.identity.models import SsoConfiguration
from apps.tenants.services import tenant_provision


def test_configure_sso_on_a_new_workspace_whose_owner_has_not_joined_yet(db, idp, loopback_allowed, tmp_path):
    """README "Management commands": `create_tenant initech ...` then `configure_sso initech
    --issuer ... --client-id foundry --client-secret-file secret.txt` (no --allowed-domain, no
    --sso-required) was refused `owner_shut_out`, naming `sso_required`: no owner has joined
    yet, so none could sign in before either (the invited owner keeps their link), and
    docs/sso.md refuses only settings that "leave no owner who has joined a way in"."""
    slug = f"n{uuid.uuid4().hex[:8]}"
    tenant = tenant_provision(slug=slug, name="Initech", owner_email=f"bill@{slug}.test").tenant
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret-value-for-the-client")
    try:
        call_command(
            "configure_sso",
            slug,
            issuer=idp.issuer,
            client_id="foundry",
            client_secret_file=secret,
            stdout=io.StringIO(),
        )
    except CommandError as exc:
        pytest.fail(f"configure_sso refused on a workspace whose owner has not joined: {exc}")
    with schema_context(tenant.schema_name):
        assert SsoConfiguration.objects.filter(pk=1).exists()
