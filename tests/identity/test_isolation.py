"""One tenant's SSO settings are invisible to and unchangeable by another."""

from django.core.management import call_command

from tests.api.conftest import api, issue
from tests.conftest import client_for
from tests.identity.conftest import SECRET, configure, stored


def test_globex_cannot_read_or_change_acmes_sso(acme, globex, idp):
    call_command("tenant_http_networks", "acme", "--allow", "127.0.0.0/8")
    configure(acme, idp)
    globex_api = api(globex, issue(globex, role="owner"))
    assert globex_api.get("/api/v1/sso").status_code == 404
    assert globex_api.delete("/api/v1/sso").status_code == 404
    # acme's token on globex's host is unknown there.
    acme_token = issue(acme, role="owner")
    wrong_host = api(globex, acme_token)
    assert wrong_host.get("/api/v1/sso").status_code == 401
    assert wrong_host.delete("/api/v1/sso").status_code == 401
    page = client_for(globex, "owner@globex.test").get("/settings/sso/")
    assert page.status_code == 200 and b"Not configured." in page.content
    assert idp.issuer.encode() not in page.content
    assert stored(acme).client_id == "foundry-acme"


def test_globex_does_not_inherit_acmes_network_allowance_or_configuration(acme, globex, idp):
    call_command("tenant_http_networks", "acme", "--allow", "127.0.0.0/8")
    configure(acme, idp)
    response = api(globex, issue(globex, role="owner")).put(
        "/api/v1/sso",
        {"issuer": idp.issuer, "client_id": "g", "client_secret": SECRET},
        content_type="application/json",
    )
    assert response.status_code == 400 and "issuer_insecure" in response.content.decode()
    assert stored(globex) is None
    assert idp.requests == ["/.well-known/openid-configuration"]  # acme's only
    api(acme, issue(acme, role="owner")).delete("/api/v1/sso")
    assert stored(acme) is None and stored(globex) is None
