"""Once a workspace is purged, nothing of it remains where it could leak or come back, and a new
workspace provisioned under the same slug sees nothing of the old one (docs/lifecycle.md)."""

from django_redis import get_redis_connection
from django_tenants.utils import schema_context

from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge
from apps.tenants.services import tenant_provision
from tests.conftest import PASSWORD
from tests.identity.sso_rows import sso_stored

OPERATOR = "operator:1"


def _purge(tenant):
    return tenant_purge(tenant=tenant_deletion_schedule(tenant=tenant, actor=OPERATOR, grace_days=0), actor=OPERATOR)


def test_purge_deletes_the_workspaces_usage_rollup_marks_from_redis(fresh_tenant, db):
    """The hourly roll-up's marks of the days it rolled up, kept for 9 days, name the workspace's
    id: the purge takes them with its other Redis keys (docs/lifecycle.md)."""
    from apps.billing.rollups import rollup_behind

    tenant_id = fresh_tenant.pk
    rollup_behind(tenant_id)  # as the hourly job does for every workspace: marks its closed days
    client = get_redis_connection("default")
    pattern = f"foundry:billing:rolled:{tenant_id}:*"
    assert list(client.scan_iter(match=pattern)), "setup: the hourly job's marks exist"

    _purge(fresh_tenant)

    left = sorted(key.decode() for key in client.scan_iter(match=pattern))
    assert left == []


def test_new_workspace_under_a_purged_slug_does_not_see_the_old_sso_configuration(fresh_tenant, db, settings):
    """A new workspace provisioned under a purged one's slug has no single sign-on, though the
    purging process read the old one's configuration a moment before (kept per process for
    FOUNDRY_TENANT_ROUTE_TTL seconds, for every API request's bearer-token check)."""
    from apps.identity.models import SsoConfiguration
    from apps.identity.oidc import sso_config_recent

    settings.FOUNDRY_TENANT_ROUTE_TTL = 30  # a valid setting; the default 2 s only narrows the window
    slug, schema = fresh_tenant.slug, fresh_tenant.schema_name
    sso_stored(fresh_tenant, "https://old-idp.example.com", client_id="old-client", signing_algs=["RS256"])
    with schema_context(schema):
        assert sso_config_recent() is not None  # an API request of the old workspace read it

    _purge(fresh_tenant)
    new = tenant_provision(slug=slug, name="New owner", owner_email=f"owner@{slug}.new", owner_password=PASSWORD).tenant
    assert new.schema_name == schema

    with schema_context(new.schema_name):
        assert not SsoConfiguration.objects.exists()
        stale = sso_config_recent()
        assert stale is None
