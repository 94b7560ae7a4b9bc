"""Settings changed by several people (or a person and automation) at once: no change is lost.

Real concurrent transactions where it matters: each racer runs in a thread of its own with its
own database connection (tests/races/conftest.py `run_together`), so its work commits on its own."""

import io
import threading

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django_tenants.utils import schema_context

from apps.identity import services as sso_services
from apps.identity.oidc import sso_config_recent
from apps.identity.services import sso_configure, sso_disable
from apps.tenants.management.commands import tenant_http_networks as networks_command
from apps.tenants.models import Tenant
from tests.conftest import tenant_user
from tests.identity.conftest import SECRET, idp, loopback_allowed  # noqa: F401 - fixtures
from tests.races.conftest import Rendezvous, run_together

# --- operators: a tenant's allowed private networks ----------------------------------------------


def test_a_network_removed_while_another_operator_allows_one_stays_removed(
    fresh_tenant, django_db_blocker, monkeypatch
):
    """`manage.py tenant_http_networks SLUG --remove CIDR` is how an operator stops a tenant's
    agent tools (and SSO discovery, audit sinks, providers) reaching a private network. Run while
    another operator adds a network with `--allow`, both changes hold: each is applied to the
    list as it is under the tenant row's lock, not to the list the command read before."""
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        call_command("tenant_http_networks", tenant.slug, "--allow", "10.9.0.0/16", stdout=io.StringIO())
        meet = Rendezvous()
        real_get = networks_command.tenant_get

        def get_then_meet(**kwargs):  # both commands have read the list, neither has written
            row = real_get(**kwargs)
            meet.wait()
            return row

        monkeypatch.setattr(networks_command, "tenant_get", get_then_meet, raising=False)

        def run(*args):
            call_command("tenant_http_networks", tenant.slug, *args, stdout=io.StringIO())

        results = run_together(lambda: run("--remove", "10.9.0.0/16"), lambda: run("--allow", "10.2.0.0/16"))
        networks = set(Tenant.objects.get(pk=tenant.pk).http_allowed_networks)
    assert [exc for _, exc in results] == [None, None], results
    assert networks == {"10.2.0.0/16"}, (
        f"--remove 10.9.0.0/16 and --allow 10.2.0.0/16 run at once left {sorted(networks)} "
        "(one operator's change was overwritten by the other's stale list)"
    )


# --- SSO: the process that made a change sees it at once -----------------------------------------


@pytest.fixture
def encryption_key(settings):
    settings.FOUNDRY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]


@pytest.mark.usefixtures("loopback_allowed", "encryption_key")
def test_sso_disabled_is_seen_at_once_by_the_process_that_disabled_it(
    fresh_tenant,
    idp,  # noqa: F811 - the fixture imported above
    django_db_blocker,
    monkeypatch,
    settings,
):
    """docs/sso.md: "A configuration change is seen at once by the process that made it", though
    each process keeps the configuration for FOUNDRY_TENANT_ROUTE_TTL seconds: a request of the
    same process (another thread) reading it while the disable has yet to commit caches the old
    one, which the process forgets again once the disable commits."""
    settings.FOUNDRY_TENANT_ROUTE_TTL = 60  # the promise is "at once", whatever the TTL
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
        with schema_context(tenant.schema_name):
            sso_configure(actor=owner, issuer=idp.issuer, client_id="foundry", client_secret=SECRET)
        forgotten, read = threading.Event(), threading.Event()
        sweep = sso_services.sessions_refused_end

        def sweep_after_a_read(request=None):  # the copy is forgotten; the disable has not committed
            forgotten.set()
            read.wait(10)
            return sweep(request)

        monkeypatch.setattr(sso_services, "sessions_refused_end", sweep_after_a_read)

        def disable():
            with schema_context(tenant.schema_name):
                sso_disable(actor=owner)

        def bearer_request_meanwhile():
            assert forgotten.wait(20)
            try:
                with schema_context(tenant.schema_name):
                    return sso_config_recent() is not None
            finally:
                read.set()

        results = run_together(disable, bearer_request_meanwhile)
        assert [exc for _, exc in results] == [None, None], results
        with schema_context(tenant.schema_name):
            after = sso_config_recent()
    assert after is None, (
        "SSO was disabled by this process and committed, yet this process still serves the old "
        f"configuration (issuer {after.issuer}) from its cache"
    )
