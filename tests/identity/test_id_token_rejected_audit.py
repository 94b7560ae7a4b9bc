"""A verified ID token offered as an API access token is refused `token_not_access` and recorded
as `auth.token.rejected`, as every refusal after a verified signature is (docs/sso.md). It was
missing from bearer.py's _SIGNED_REFUSALS: a replayed real credential (an ID token passes through
the browser) left no trace. Found by the audit-events review."""

import pytest

from tests.api.conftest import api
from tests.audit.watch import Watch, describe
from tests.identity.test_login import ACCOUNTS, client_config, login, sso


@pytest.mark.usefixtures("loopback_allowed")
def test_a_verified_id_token_refused_as_an_access_token_is_audited(acme, oidc_provider_factory):
    """An ID token (signed by the workspace's provider, verified) sent to the API is refused
    `token_not_access` after its signature verified — and, unlike every other such refusal
    (apps/identity/bearer.py _SIGNED_REFUSALS), leaves no `auth.token.rejected` event."""
    provider = oidc_provider_factory(clients=[client_config(acme)], accounts=ACCOUNTS)
    sso(acme, provider, audience="")
    client, response = login(acme, provider, "ada")
    assert response.status_code == 302
    id_token = client.session["oidc_id_token"]
    watch = Watch()
    response = api(acme, id_token).get("/api/v1/members")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "token_not_access")
    rejected = [e for e in watch.new("acme") if e.action == "auth.token.rejected"]
    assert len(rejected) == 1, f"expected one auth.token.rejected, got {describe(watch.new('acme'))}"
    assert (rejected[0].outcome, rejected[0].data.get("reason")) == ("failure", "token_not_access")
