from django.core.cache import cache
from django.http import HttpResponse
from django.test import RequestFactory
from django.views.decorators.cache import cache_page
from django_tenants.utils import schema_context


def test_cache_keys_are_tenant_prefixed(acme, globex):
    with schema_context("acme"):
        cache.set("greeting", "hello from acme")
    with schema_context("globex"):
        assert cache.get("greeting") is None
        cache.set("greeting", "hello from globex")
    with schema_context("acme"):
        assert cache.get("greeting") == "hello from acme"


def test_cache_page_never_serves_one_tenants_page_to_another(acme, globex):
    calls = []

    @cache_page(60)
    def view(request):
        calls.append(request.get_host())
        return HttpResponse(f"secret of {request.get_host()}")

    factory = RequestFactory()
    # Same path, same Host-independent cache key inputs, different tenants.
    for tenant in ("acme", "globex", "acme", "globex"):
        with schema_context(tenant):
            response = view(factory.get("/report", HTTP_HOST="shared.localhost"))
            assert response.content == b"secret of shared.localhost"
    assert calls == ["shared.localhost", "shared.localhost"]  # one miss per tenant, then hits
