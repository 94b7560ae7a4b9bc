"""The operator's limits form changes only what its user changed on the page (as the retention
form does): a page opened before another operator set an override, or a post without a field,
cleared every override it sent empty, so a cap another operator had just set was lifted without
a word. Found by the console review."""

import re

from apps.tenants.models import Tenant
from tests.conftest import client_for

LIMIT_FIELDS = ("requests_per_second", "burst", "concurrent_runs", "monthly_tokens")


def _rendered_values(html: str) -> dict:
    """The limits form's fields as the page rendered them (what a browser sends back)."""
    values = {}
    for name in LIMIT_FIELDS:
        match = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
        assert match, name
        value = re.search(r'value="([^"]*)"', match.group(0))
        values[name] = value.group(1) if value else ""
    return values


def test_a_stale_limits_form_does_not_undo_another_operators_override(acme):
    first = client_for(None, "operator@platform.test")
    second = client_for(None, "operator@platform.test")
    page = first.get("/tenants/acme/limits/")
    assert page.status_code == 200
    sent = _rendered_values(page.content.decode())  # all empty: acme has no overrides yet

    # Meanwhile another operator caps acme's concurrent runs.
    response = second.post("/tenants/acme/limits/", {**sent, "concurrent_runs": "3"})
    assert response.status_code == 302
    assert Tenant.objects.get(slug="acme").concurrent_runs_override == 3

    # The first operator, on the page opened before, raises only the request rate.
    response = first.post("/tenants/acme/limits/", {**sent, "requests_per_second": "50"})
    tenant = Tenant.objects.get(slug="acme")
    # Either refused as stale (a 409 on the form, nothing changed) or only the changed field saved:
    # never the other operator's cap silently lifted.
    assert tenant.concurrent_runs_override == 3, (response.status_code, tenant.concurrent_runs_override)


def test_a_limits_post_missing_fields_does_not_clear_their_overrides(acme):
    Tenant.objects.filter(slug="acme").update(concurrent_runs_override=3, monthly_tokens_override=1000)
    client = client_for(None, "operator@platform.test")
    response = client.post("/tenants/acme/limits/", {"burst": "40"})  # the other three fields absent
    tenant = Tenant.objects.get(slug="acme")
    assert (tenant.concurrent_runs_override, tenant.monthly_tokens_override) == (3, 1000), response.status_code


def test_the_page_carries_each_value_it_was_shown_with(acme):
    page = client_for(None, "operator@platform.test").get("/tenants/acme/limits/").content.decode()
    for name in LIMIT_FIELDS:
        assert re.search(rf'<input[^>]*type="hidden"[^>]*name="initial-{name}"', page), name
