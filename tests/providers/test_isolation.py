"""One workspace's provider credentials are unreachable from another: API, console and runs."""

import json

import pytest
from django_tenants.utils import schema_context
from langchain_core.messages import HumanMessage

from apps.providers.services import provider_settings_for
from foundry.errors import ServiceError
from foundry.runtime.providers import provider_create
from tests.api.conftest import api, issue
from tests.conftest import client_for
from tests.providers.conftest import GLOBEX_KEY, KEY, manifest, raw_rows, set_credential, stored
from tests.providers.fake_models import Reply, openai_completion


@pytest.fixture
def acme_configured(acme):
    return set_credential(acme, base_url="https://acme-gateway.example.com/v1", organization="org-acme")


def _unchanged(acme, before) -> None:
    after = stored(acme)
    assert (after.pk, after.api_key_encrypted, after.base_url, after.updated_at) == (
        before.pk,
        before.api_key_encrypted,
        before.base_url,
        before.updated_at,
    )


def test_globex_admins_see_none_of_acmes_credentials(acme, globex, acme_configured):
    client = api(globex, issue(globex, role="owner"))
    listed = client.get("/api/v1/providers")
    assert (listed.status_code, listed.json()["providers"]) == (200, [])
    assert client.get("/api/v1/providers/openai").status_code == 404
    page = client_for(globex, "owner@globex.test").get("/settings/providers/")
    assert page.status_code == 200
    assert b"acme-gateway" not in page.content and acme_configured.api_key_last4.encode() not in page.content


def test_globex_cannot_change_or_delete_acmes_credentials(acme, globex, acme_configured):
    client = api(globex, issue(globex, role="owner"))
    deleted = client.delete("/api/v1/providers/openai")
    assert (deleted.status_code, deleted.json()["error"]["code"]) == (404, "provider_not_configured")
    console = client_for(globex, "owner@globex.test")
    assert console.post("/settings/providers/openai/delete/").status_code == 404
    # Setting globex's own credential creates a row in globex's schema only.
    put = client.put("/api/v1/providers/openai", json.dumps({"api_key": GLOBEX_KEY}), content_type="application/json")
    assert put.status_code == 201
    _unchanged(acme, acme_configured)
    assert [row[2] for row in raw_rows(acme)] == [KEY[-4:]]
    assert [row[2] for row in raw_rows(globex)] == [GLOBEX_KEY[-4:]]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/providers", None),
        ("GET", "/api/v1/providers/openai", None),
        ("PUT", "/api/v1/providers/openai", {"api_key": "sk-attacker-0000000000000000"}),
        ("DELETE", "/api/v1/providers/openai", None),
    ],
)
def test_a_globex_token_is_refused_on_acmes_host(acme, globex, acme_configured, method, path, body):
    client = api(acme, issue(globex, role="owner"))
    response = client.generic(method, path, json.dumps(body or {}), content_type="application/json")
    assert response.status_code == 401
    assert KEY.encode() not in response.content
    _unchanged(acme, acme_configured)


def test_a_globex_session_is_refused_on_acmes_console(acme, globex, acme_configured):
    client = client_for(globex, "owner@globex.test")
    client.defaults["HTTP_HOST"] = "acme.localhost"  # the same cookies, sent to acme's host
    for response in (
        client.get("/settings/providers/"),
        client.post("/settings/providers/openai/", {"openai-api_key": "sk-attacker-0000000000000000"}),
        client.post("/settings/providers/openai/delete/"),
    ):
        assert response.status_code in (302, 403), response.status_code
        assert KEY[-4:].encode() not in response.content
    _unchanged(acme, acme_configured)


def test_a_run_in_globex_never_sees_acmes_credential(acme, globex, acme_configured):
    with schema_context(globex.schema_name), pytest.raises(ServiceError) as info:
        provider_settings_for(manifest())
    assert info.value.code == "provider_not_configured"


def test_each_workspace_calls_its_model_with_its_own_key(acme, globex, model_server, loopback_allowed):
    set_credential(acme, base_url=model_server.origin + "/v1")
    set_credential(globex, api_key=GLOBEX_KEY, base_url=model_server.origin + "/v1")
    model_server.queue(Reply(body=openai_completion("for globex")), Reply(body=openai_completion("for acme")))
    for tenant in (globex, acme):
        with schema_context(tenant.schema_name):
            settings = provider_settings_for(manifest())
        provider_create("openai", settings).complete([HumanMessage(content="hi")], [])
    to_globex, to_acme = model_server.requests
    assert to_globex.headers["authorization"] == f"Bearer {GLOBEX_KEY}"
    assert to_acme.headers["authorization"] == f"Bearer {KEY}"


def test_a_private_network_allowed_for_one_tenant_is_not_allowed_for_another(acme, globex):
    from django.core.exceptions import ValidationError
    from django.core.management import call_command

    from tests.providers.conftest import set_credential

    call_command("tenant_http_networks", "acme", "--allow", "10.20.0.0/16")
    set_credential(acme, base_url="http://10.20.0.5:8000/v1")
    with pytest.raises(ValidationError) as info:
        set_credential(globex, base_url="http://10.20.0.5:8000/v1", email="owner@globex.test")
    assert info.value.error_dict["base_url"][0].code == "base_url_refused"
