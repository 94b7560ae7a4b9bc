"""An internationalised email domain can be allowed for single sign-on in either spelling
(`bücher.test`, `xn--bcher-kva.test`): it is stored as members' addresses spell it (U-labels,
accounts' `domain_spelling`), so its verified addresses are admitted. One IDNA reads as another
name is refused, and so is a list longer than allowed, before each of its names is read."""

import json

import pytest
from django.core.exceptions import ValidationError

from apps.identity import services
from apps.identity.login import SsoLoginFailed, claims_email
from tests.api.conftest import api, issue
from tests.conftest import client_for
from tests.identity.conftest import SECRET, configure, idp, loopback_allowed, stored  # noqa: F401 - fixtures
from tests.providers.conftest import encryption_key  # noqa: F401 - autouse

pytestmark = pytest.mark.usefixtures("loopback_allowed")


@pytest.mark.parametrize("spelling", ["bücher.test", "xn--bcher-kva.test"])
def test_an_idn_domain_can_be_allowed_and_admits_its_verified_addresses(acme, idp, spelling):  # noqa: F811
    try:
        config = configure(acme, idp, allowed_domains=[spelling])
    except ValidationError as exc:
        pytest.fail(f"allowed domain {spelling!r} refused: {exc}")
    for address in ("ada@bücher.test", "ada@xn--bcher-kva.test"):
        try:
            assert claims_email(config, {"email": address, "email_verified": True}) == "ada@bücher.test"
        except SsoLoginFailed as exc:
            pytest.fail(f"{address} refused with allowed_domains={config.allowed_domains}: {exc.code}")


@pytest.mark.parametrize("typed", ["ac\u200bme.test", "\uff41\uff43\uff4d\uff45.test", "ac\u00adme.test"])
def test_a_domain_idna_reads_as_another_name_is_refused_and_changes_nothing(acme, idp, typed):  # noqa: F811
    """A zero-width space, a soft hyphen or fullwidth letters make a domain shown as acme.test that
    no member's address can have (email_clean refuses them): it was stored as typed, after which
    every verified acme.test address was refused (`email_domain_refused`). Now a 400."""
    client = api(acme, issue(acme, role="owner"))
    body = {"issuer": idp.issuer, "client_id": "foundry", "client_secret": SECRET, "allowed_domains": [typed]}
    response = client.put("/api/v1/sso", json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "allowed_domains_invalid"
    assert stored(acme) is None


@pytest.mark.parametrize("count", [1_000, 5_000])
def test_more_domains_than_allowed_are_refused_before_each_is_spelled(acme, idp, monkeypatch, count):  # noqa: F811
    """The console's list: past MAX_DOMAINS (50) it is refused before IDNA reads each name (a 4 MiB
    form of non-ASCII names took ~37 s of CPU inside the request's transaction), by the form when
    the text is longer than the page takes (5,000 names), else by the service (1,000)."""
    calls = []
    real = services.domain_spelling
    monkeypatch.setattr(services, "domain_spelling", lambda domain: calls.append(domain) or real(domain))
    domains = "\n".join(f"dü{i}.test" for i in range(count))
    response = client_for(acme, "owner@acme.test").post(
        "/settings/sso/",
        {"issuer": idp.issuer, "client_id": "foundry", "client_secret": SECRET, "allowed_domains": domains},
    )
    assert response.status_code == 400 and stored(acme) is None
    assert calls == [], f"{len(calls)} domains spelled by IDNA before the cap of {services.MAX_DOMAINS} refused them"
