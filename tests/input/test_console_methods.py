"""Console pages answer a method they do not serve with 405 (most do: @require_safe,
@require_http_methods). These render the page for PUT/PATCH/DELETE as if it were a GET."""

import pytest

from tests.conftest import client_for

TENANT_PAGES = ["/", "/members/", "/settings/tokens/", "/settings/providers/"]
OPERATOR_PAGES = ["/"]


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
@pytest.mark.parametrize("path", TENANT_PAGES)
def test_tenant_console_pages_refuse_unserved_methods(acme, path, method):
    response = getattr(client_for(acme, "owner@acme.test"), method)(path)
    # Observed: 200 and the page.
    assert response.status_code == 405, response.status_code


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["put", "patch", "delete"])
@pytest.mark.parametrize("path", OPERATOR_PAGES)
def test_operator_console_pages_refuse_unserved_methods(path, method):
    response = getattr(client_for(None, "operator@platform.test"), method)(path)
    assert response.status_code == 405, response.status_code


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_the_rollback_page_refuses_methods_it_does_not_serve(acme, method):
    from django_tenants.utils import schema_context

    from apps.catalog.models import Version
    from tests.runs.conftest import FINANCE, TRIAGE, deploy

    deploy(acme, FINANCE, TRIAGE)
    with schema_context("acme"):
        before = Version.objects.count()
    response = getattr(client_for(acme, "owner@acme.test"), method)("/domains/finance/rollback/1/")
    assert response.status_code == 405, response.status_code
    with schema_context("acme"):
        assert Version.objects.count() == before
