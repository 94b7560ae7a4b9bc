"""An address taken from userinfo is verified only if userinfo says so (docs/sso.md): the ID
token's `email_verified`, naming no address of its own, vouches for none. It did (oidc.py
`get_userinfo` kept it, and dropped userinfo's `false` for the address userinfo named), and a
subject at the provider was linked to the workspace owner's account by an address the provider
said was not verified. Found by the identities review."""

from urllib.parse import urlencode

from django_tenants.utils import schema_context

from apps.identity.models import ExternalIdentity
from tests.identity.scripted_idp import begin, scripted_sso

CLIENT_ID = "foundry-acme"


def test_an_address_userinfo_says_is_unverified_does_not_link_the_owner(acme, scripted):
    scripted_sso(acme, scripted, client_id=CLIENT_ID, client_secret="s" * 20)
    client, _authorize, state, nonce = begin(acme)
    # The ID token carries no email, only `email_verified: true`; userinfo names the owner's
    # address and says it is not verified.
    id_token = scripted.id_token(CLIENT_ID, nonce, sub="mallory-1", email=None, email_verified=True)
    scripted.userinfo = {"sub": "mallory-1", "email": "owner@acme.test", "email_verified": False}
    scripted.token_response = {"id_token": id_token, "access_token": "at-1", "token_type": "Bearer"}
    response = client.get("/sso/callback/?" + urlencode({"code": "c1", "state": state}))

    with schema_context(acme.schema_name):
        linked = list(ExternalIdentity.objects.filter(subject="mallory-1").values_list("user__email", flat=True))
    assert linked == [], f"subject mallory-1 linked to {linked} (response {response.status_code})"
    assert response.status_code == 403
