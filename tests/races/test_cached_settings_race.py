"""Per-process copies of settings (budgets, limits) read by one thread while another thread of
the same process changes them (real threads, each on its own PostgreSQL connection).

docs/billing.md: "A budget set or changed applies at once in the process that set it";
docs/limits.md: a limit change is seen "at once in the process that made it"; docs/sso.md the
same of SSO settings. A reader that queried the database just before the change committed does
not store what it read after the change cleared the process's copy (foundry/recent.py: a forget
moves the cache's generation). It did, and the process that made the change served the old value
for FOUNDRY_TENANT_ROUTE_TTL seconds (found by a review)."""

import contextlib
import threading

from django_tenants.utils import schema_context

from apps.billing import quotas
from apps.billing.services import budget_set
from apps.tenants import limits as limits_module
from apps.tenants.services import tenant_limits_set
from tests.conftest import tenant_user
from tests.races.conftest import run_together


class ReadBeforeCommit:
    """One thread (`reader`) reads the settings and, once its query is done, waits for the other
    (`change`) to commit: its copy is stored after the change cleared the process's cache."""

    def __init__(self):
        self.read, self.committed = threading.Event(), threading.Event()

    def pause(self) -> None:
        if threading.current_thread().name == "reader":
            self.read.set()
            self.committed.wait(10)

    def after(self, real):
        """`real` (a query), then the reader's pause."""

        def queried(*args, **kwargs):
            found = real(*args, **kwargs)
            self.pause()
            return found

        return queried

    def reader(self, read):
        def named():
            threading.current_thread().name = "reader"
            return read()

        return named

    def change(self, write):
        def committing():
            assert self.read.wait(10)
            try:
                write()
            finally:
                self.committed.set()

        return committing


def test_a_budget_read_racing_its_change_is_not_cached_stale_in_the_process_that_changed_it(
    fresh_tenant, django_db_blocker, monkeypatch, settings
):
    """A model call's quota check (budgets_of) reads the budgets while an admin, in another thread
    of the same process, lowers the workspace budget; the check's read happens before the change
    commits and its copy would be stored after the change cleared the cache. Afterwards this process
    sees the new budget (1,000 tokens) at once; it served the old one (1,000,000) for the whole TTL,
    so runs went on spending past the budget the admin just lowered."""
    settings.FOUNDRY_TENANT_ROUTE_TTL = 60  # the promise is "at once", whatever the TTL
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
        with schema_context(tenant.schema_name):
            budget_set(actor=owner, tenant_id=tenant.pk, project="", monthly_tokens=1_000_000)
        quotas.budgets_cache_clear()
        race, real_scope = ReadBeforeCommit(), quotas.usage_scope

        @contextlib.contextmanager
        def scope_then_wait(*ids):
            with real_scope(*ids):
                yield
            race.pause()  # the change commits (and clears the copy) before this one is stored

        monkeypatch.setattr(quotas, "usage_scope", scope_then_wait)

        def lower():
            with schema_context(tenant.schema_name):
                budget_set(actor=owner, tenant_id=tenant.pk, project="", monthly_tokens=1_000)

        results = run_together(race.reader(lambda: quotas.budgets_of(tenant.pk)[""].monthly_tokens), race.change(lower))
        assert [exc for _, exc in results] == [None, None], results
        assert results[0][0] == 1_000_000  # the check itself began before the change: fine
        seen = quotas.budgets_of(tenant.pk)[""].monthly_tokens
    assert seen == 1_000, f"the process that lowered the budget to 1000 tokens still applies {seen}"


def test_a_limit_read_racing_an_operators_override_is_not_cached_stale_in_that_process(
    fresh_tenant, django_db_blocker, monkeypatch, settings
):
    """An operator lowers a workspace's monthly tokens while a request of the same process reads
    its limits: the read happens before the override commits, the copy is stored after the
    override cleared it. The process sees the change at once (docs/limits.md); it kept the old
    limit for the TTL."""
    settings.FOUNDRY_TENANT_ROUTE_TTL = 60
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        limits_module.limits_cache_clear()
        before = limits_module.limits_for(tenant.pk).monthly_tokens
        limits_module.limits_cache_clear()
        lowered = 1234 if before != 1234 else 4321
        race = ReadBeforeCommit()
        monkeypatch.setattr(limits_module, "_query", race.after(limits_module._query))

        def override():
            tenant_limits_set(tenant=tenant, overrides={"monthly_tokens": lowered}, actor="operator@platform.test")

        results = run_together(
            race.reader(lambda: limits_module.limits_for(tenant.pk).monthly_tokens), race.change(override)
        )
        assert [exc for _, exc in results] == [None, None], results
        seen = limits_module.limits_for(tenant.pk).monthly_tokens
    assert seen == lowered, f"the process that set monthly_tokens to {lowered} still applies {seen}"


def test_sso_config_read_racing_its_disable_is_not_cached_stale_in_the_process_that_disabled_it(
    fresh_tenant, django_db_blocker, monkeypatch, settings
):
    """docs/sso.md: "A configuration change is seen at once by the process that made it". A bearer
    request of the same process reads the configuration (sso_config) just before an owner's
    disable commits, and would store its copy just after the disable's on-commit forget: the
    process that disabled SSO sees it at once; it went on accepting the old identity provider's
    tokens for the TTL. (test_settings_lost_updates covers a copy stored before the commit.)"""
    from apps.identity import oidc
    from apps.identity.services import sso_disable
    from tests.races.conftest import jit_sso_configuration

    settings.FOUNDRY_TENANT_ROUTE_TTL = 60
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
        with schema_context(tenant.schema_name):
            config = jit_sso_configuration()
            config.pk = 1
            config.save()
        oidc._recent.forget()
        race = ReadBeforeCommit()
        monkeypatch.setattr(oidc, "sso_config", race.after(oidc.sso_config))

        def bearer_request():
            with schema_context(tenant.schema_name):
                return oidc.sso_config_recent() is not None

        def disable():
            with schema_context(tenant.schema_name):
                sso_disable(actor=owner)

        results = run_together(race.reader(bearer_request), race.change(disable))
        assert [exc for _, exc in results] == [None, None], results
        with schema_context(tenant.schema_name):
            after = oidc.sso_config_recent()
    assert after is None, f"SSO disabled and committed by this process, yet it still serves issuer {after.issuer}"
