"""Access tokens from the workspace's identity provider on the API: the member their (issuer,
subject) is linked to, with the role their groups map to; refused on any other workspace's
host — even one using the same provider — and for every kind of forgery, with a stable code."""

import base64
import json
import time

import jwt
import pytest
from django_tenants.utils import schema_context

from apps.accounts.models import User
from tests.api.conftest import api, issue
from tests.conftest import audit_events
from tests.identity.test_login import ACCOUNTS, account, client_config, finish, login, refused, sso, start
from tests.oidc_provider import generate_key

pytestmark = pytest.mark.usefixtures("loopback_allowed")


@pytest.fixture
def shared(oidc_provider_factory, acme, globex):
    """One provider for two workspaces, each with its own client (and audience)."""
    return oidc_provider_factory(clients=[client_config(acme), client_config(globex)], accounts=ACCOUNTS)


def code(response) -> str:
    return response.json()["error"]["code"]


def signed(provider, claims: dict, **overrides) -> str:
    """A token signed with the provider's real signing key (so only the claims are wrong)."""
    key = provider.keys[0]
    private = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(key))
    return jwt.encode({**claims, **overrides}, private, algorithm="RS256", headers={"kid": key["kid"]})


def test_a_signed_in_members_token_works_on_the_api_with_their_role(acme, shared):
    sso(acme, shared)
    login(acme, shared, "ada")
    token = shared.access_token("foundry-acme", "ada")
    response = api(acme, token).get("/api/v1/sso")  # settings.manage: admins
    assert response.status_code == 200, response.content
    # The token's groups decide the role of the request.
    shared.set_accounts({**ACCOUNTS, "ada": account("ada", groups=["foundry-devs"])})
    developer = shared.access_token("foundry-acme", "ada")
    assert api(acme, developer).get("/api/v1/sso").status_code == 403
    assert api(acme, developer).get("/api/v1/members").status_code == 200
    # Foundry API tokens keep working beside them.
    assert api(acme, issue(acme)).get("/api/v1/members").status_code == 200


def test_a_token_of_someone_never_signed_in_or_deactivated_is_refused(acme, shared):
    sso(acme, shared)
    token = shared.access_token("foundry-acme", "bob")
    response = api(acme, token).get("/api/v1/members")
    assert (response.status_code, code(response)) == (401, "identity_unknown")
    assert audit_events("acme", action="auth.token.rejected", data={"reason": "identity_unknown"})
    login(acme, shared, "bob")
    assert api(acme, token).get("/api/v1/members").status_code == 200
    with schema_context(acme.schema_name):
        User.objects.filter(email="bob@acme.test").update(is_active=False)
    assert code(api(acme, token).get("/api/v1/members")) == "user_inactive"


def test_narrowing_the_allowed_domains_shuts_out_linked_members_tokens(acme, shared):
    """A member linked while their domain was allowed loses API access with the provider's tokens
    once the workspace stops allowing that domain, as their console session ends."""
    sso(acme, shared, allowed_domains=["acme.test", "evil.test"])
    login(acme, shared, "eve")
    token = shared.access_token("foundry-acme", "eve")
    assert api(acme, token).get("/api/v1/members").status_code == 200
    sso(acme, shared, allowed_domains=["acme.test"])
    response = api(acme, token).get("/api/v1/members")
    assert (response.status_code, code(response)) == (401, "email_domain_refused")
    assert audit_events("acme", action="auth.token.rejected", data={"reason": "email_domain_refused"})
    # Members in the allowed domains are unaffected, and every domain is allowed again with none listed.
    login(acme, shared, "ada")
    assert api(acme, shared.access_token("foundry-acme", "ada")).get("/api/v1/members").status_code == 200
    sso(acme, shared, allowed_domains=[])
    assert api(acme, token).get("/api/v1/members").status_code == 200


def test_a_token_for_one_workspace_is_refused_on_another_sharing_the_provider(acme, globex, shared):
    sso(acme, shared)
    sso(globex, shared, allowed_domains=[])
    login(acme, shared, "ada")
    login(globex, shared, "ada")  # the same person is a member of both
    acme_token = shared.access_token("foundry-acme", "ada")
    assert api(acme, acme_token).get("/api/v1/members").status_code == 200
    response = api(globex, acme_token).get("/api/v1/members")
    assert (response.status_code, code(response)) == (401, "token_audience_invalid")
    # Even if globex names acme's audience, the token was issued to acme's client.
    sso(globex, shared, allowed_domains=[], audience="api://foundry-acme")
    assert code(api(globex, acme_token).get("/api/v1/members")) == "token_client_invalid"
    assert audit_events("globex", action="auth.token.rejected", data={"reason": "token_client_invalid"})
    assert not audit_events("acme", action="auth.token.rejected")


def test_forged_expired_and_misaddressed_tokens_are_refused(acme, shared):
    sso(acme, shared)
    login(acme, shared, "ada")
    good = jwt.decode(shared.access_token("foundry-acme", "ada"), options={"verify_signature": False})
    now = int(time.time())
    cases = {
        "token_expired": signed(shared, good, iat=now - 900, exp=now - 300),
        "token_issuer_invalid": signed(shared, good, iss="https://evil.example"),
        "token_audience_invalid": signed(shared, good, aud="api://something-else"),
        "token_claims_missing": signed(shared, {k: v for k, v in good.items() if k != "exp"}),
    }
    for expected, token in cases.items():
        response = api(acme, token).get("/api/v1/members")
        assert (response.status_code, code(response)) == (401, expected), expected
    header, body, _sig = shared.access_token("foundry-acme", "ada").split(".")
    tampered = base64.urlsafe_b64encode(json.dumps({**good, "sub": "sub-admin"}).encode()).rstrip(b"=").decode()
    assert code(api(acme, f"{header}.{tampered}.{_sig}").get("/api/v1/members")) == "token_signature_invalid"
    none = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    assert code(api(acme, f"{none}.{body}.").get("/api/v1/members")) == "token_alg_refused"
    public_pem = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(shared.keys[0])).public_key()
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    pem = public_pem.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    hs = jwt.api_jws.PyJWS()
    hs._algorithms["HS256"].prepare_key = lambda key: key  # PyJWT itself refuses to do this
    confused = hs.encode(json.dumps(good).encode(), pem, algorithm="HS256", headers={"kid": shared.keys[0]["kid"]})
    assert code(api(acme, confused).get("/api/v1/members")) == "token_alg_refused"
    # Only refusals after a verified signature are worth an event; forgeries are noise.
    reasons = {e.data["reason"] for e in audit_events("acme", action="auth.token.rejected")}
    assert reasons == {"token_expired", "token_issuer_invalid", "token_audience_invalid", "token_claims_missing"}


# A JWT header of 13 KB (under the size limit) with arrays nested 5,000 deep.
NESTED = base64.urlsafe_b64encode(b'{"alg":"RS256","x":' + b"[" * 5000 + b"]" * 5000 + b"}").decode().rstrip("=")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer eyJhbGciOiJSUzI1NiJ9.e30", "invalid_token"),
        ("Bearer eyJ" + "A" * 20000 + ".eyJ.x", "token_too_large"),
        ("Bearer eyJ%%%.eyJ%%%.sig", "token_malformed"),
        ("Bearer eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln", "token_malformed"),
        ("Bearer eyJ\u00e9.eyJ.x", "token_malformed"),
        (f"Bearer {NESTED}.eyJzdWIiOiJhIn0.c2ln", "token_malformed"),  # json.loads: RecursionError
    ],
    ids=["two_parts", "too_large", "not_base64", "not_json", "not_ascii", "nested_past_the_stack"],
)
def test_malformed_bearer_tokens_get_a_clear_401(acme, shared, header, expected):
    sso(acme, shared)
    from django.test import Client

    response = Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=header).get("/api/v1/members")
    assert (response.status_code, code(response)) == (401, expected)


def test_without_sso_a_jwt_is_refused(acme):
    token = jwt.encode({"iss": "https://idp.example", "sub": "x"}, "k" * 32, algorithm="HS256")
    response = api(acme, token).get("/api/v1/members")
    assert (response.status_code, code(response)) == (401, "sso_not_configured")


def test_two_workspaces_with_their_own_providers_accept_only_their_own(acme, globex, oidc_provider_factory):
    acme_idp = oidc_provider_factory(clients=[client_config(acme)], accounts=ACCOUNTS)
    globex_idp = oidc_provider_factory(clients=[client_config(globex)], accounts=ACCOUNTS)
    sso(acme, acme_idp)
    sso(globex, globex_idp, allowed_domains=[])
    login(acme, acme_idp, "ada")
    login(globex, globex_idp, "ada")
    acme_token = acme_idp.access_token("foundry-acme", "ada")
    globex_token = globex_idp.access_token("foundry-globex", "ada")
    assert api(acme, acme_token).get("/api/v1/members").status_code == 200
    assert api(globex, globex_token).get("/api/v1/members").status_code == 200
    # Each provider's keys are unknown to the other workspace: the signature cannot even be checked.
    assert code(api(globex, acme_token).get("/api/v1/members")) == "token_key_unknown"
    assert code(api(acme, globex_token).get("/api/v1/members")) == "token_key_unknown"
    # A sign-in answer from acme's provider is worthless on globex's host.

    _client, authorize = start(acme)
    callback = acme_idp.follow_login(authorize, "ada")
    globex_client, _ = start(globex)
    refused(finish(globex_client, callback.replace("acme.localhost", "globex.localhost")), "state_invalid")


def test_saving_the_sso_settings_again_stops_trusting_a_key_the_provider_withdrew(acme, shared):
    """The provider's key set is cached for an hour: a key it withdrew (compromised) still
    verifies tokens meanwhile. Saving the settings again drops the cached set, so such tokens are
    refused at once, and tokens signed with the provider's new key work."""
    sso(acme, shared)
    login(acme, shared, "ada")
    old = shared.access_token("foundry-acme", "ada")
    assert api(acme, old).get("/api/v1/members").status_code == 200  # the key set is cached now
    shared.restart(keys=[generate_key("RS256")])  # the provider withdraws its key
    assert api(acme, old).get("/api/v1/members").status_code == 200  # the cached set still holds it
    sso(acme, shared)  # an admin saves the settings again
    response = api(acme, old).get("/api/v1/members")
    assert (response.status_code, code(response)) == (401, "token_key_unknown")
    assert api(acme, shared.access_token("foundry-acme", "ada")).get("/api/v1/members").status_code == 200


def test_an_id_token_is_not_an_api_access_token(acme, oidc_provider_factory):
    """The ID token of a console sign-in is signed for the client id, the default API token
    audience, and travels through the browser (`id_token_hint` on sign-out): it is no access token
    (it carries the sign-in's nonce), and the API refuses it (`token_not_access`)."""
    provider = oidc_provider_factory(clients=[client_config(acme)], accounts=ACCOUNTS)
    sso(acme, provider, audience="")
    client, response = login(acme, provider, "ada")
    assert response.status_code == 302
    id_token = client.session["oidc_id_token"]
    response = api(acme, id_token).get("/api/v1/members")
    assert response.status_code == 401, "the ID token of a console sign-in authenticates on the API"
    assert response.json()["error"]["code"] == "token_not_access"


def test_a_provider_token_showing_a_demotion_stores_it_and_revokes_what_the_old_role_issued(acme, shared):
    """The provider demoted a member (admin → developer) since they last signed in. Their next
    access token stores the demotion as a sign-in would: the API tokens they issued that may do
    more than a developer are revoked, not left with an admin's standing until a console sign-in
    they may never make. A token issued before their last sign-in carries claims that sign-in
    replaced: it demotes nothing."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.identity.models import ExternalIdentity
    from apps.tokens.services import token_issue

    sso(acme, shared)
    login(acme, shared, "ada")
    with schema_context(acme.schema_name):
        ada = User.objects.get(email="ada@acme.test")
        assert ada.role == "admin"
        ExternalIdentity.objects.filter(user=ada).update(last_login_at=timezone.now() - timedelta(minutes=5))
        admin_token = token_issue(actor=ada, name="ci", role="admin", scopes=["read", "admin"]).plaintext
        reader = token_issue(actor=ada, name="dashboards", role="viewer", scopes=["read"]).plaintext
    shared.set_accounts({**ACCOUNTS, "ada": account("ada", groups=["foundry-devs"])})
    demoted = shared.access_token("foundry-acme", "ada")
    older = signed(shared, jwt.decode(demoted, options={"verify_signature": False}), iat=int(time.time()) - 3600)

    assert api(acme, older).get("/api/v1/members").status_code == 200
    with schema_context(acme.schema_name):
        assert User.objects.get(pk=ada.pk).role == "admin"  # claims older than the last sign-in
    assert api(acme, admin_token).get("/api/v1/sso").status_code == 200

    assert api(acme, demoted).get("/api/v1/members").status_code == 200
    with schema_context(acme.schema_name):
        assert User.objects.get(pk=ada.pk).role == "developer"
    assert code(api(acme, admin_token).get("/api/v1/members")) == "invalid_token"
    assert api(acme, reader).get("/api/v1/members").status_code == 200
    assert [e.data["to"] for e in audit_events("acme", action="member.role_synced")] == ["developer"]
    assert [e.data["reason"] for e in audit_events("acme", action="token.revoked")] == ["issuer_demoted"]
    api(acme, demoted).get("/api/v1/members")  # once stored, nothing more happens
    assert len(audit_events("acme", action="member.role_synced")) == 1


def test_a_token_issued_before_the_sign_in_that_demoted_its_member_acts_with_the_stored_role(acme, shared):
    """ada signs in as an admin and her client holds an access token; the provider moves her to
    developers and her next sign-in stores the demotion. The token from before that sign-in
    carries the admin claim the sign-in replaced: for the rest of its lifetime it acts as the
    developer she is now (settings.manage refused), never as the admin she was."""
    sso(acme, shared)
    login(acme, shared, "ada")
    fresh = shared.access_token("foundry-acme", "ada")
    stale = signed(shared, jwt.decode(fresh, options={"verify_signature": False}), iat=int(time.time()) - 60)
    assert api(acme, stale).get("/api/v1/sso").status_code == 200  # an admin, as she was

    shared.set_accounts({**ACCOUNTS, "ada": account("ada", groups=["foundry-devs"])})
    login(acme, shared, "ada")
    with schema_context(acme.schema_name):
        assert User.objects.get(email="ada@acme.test").role == "developer"
    assert api(acme, stale).get("/api/v1/sso").status_code == 403
    with schema_context(acme.schema_name):
        ada = User.objects.get(email="ada@acme.test")
    assert api(acme, stale).patch(f"/api/v1/members/{ada.pk}", {"role": "admin"}).status_code == 403
    with schema_context(acme.schema_name):
        assert User.objects.get(pk=ada.pk).role == "developer"


def test_a_promotion_in_a_token_waits_for_a_sign_in(acme, shared):
    """The provider moved a developer to admins: their access token claims admin, but the
    workspace's stored role acts until they sign in, which stores the promotion."""
    sso(acme, shared)
    shared.set_accounts({**ACCOUNTS, "ada": account("ada", groups=["foundry-devs"])})
    login(acme, shared, "ada")
    shared.set_accounts(ACCOUNTS)  # foundry-admins again
    promoted = shared.access_token("foundry-acme", "ada")
    assert api(acme, promoted).get("/api/v1/sso").status_code == 403
    with schema_context(acme.schema_name):
        assert User.objects.get(email="ada@acme.test").role == "developer"
    login(acme, shared, "ada")
    assert api(acme, promoted).get("/api/v1/sso").status_code == 200


def test_a_token_naming_a_role_beside_the_stored_one_is_refused_until_a_sign_in(acme, shared):
    """A developer the provider moved to operators: acting as either would give what the other
    may not (deploying, approving), so the token is refused (`role_changed`, audited) until a
    sign-in stores the new role."""
    sso(acme, shared, role_map={"foundry-admins": "admin", "foundry-devs": "developer", "foundry-ops": "operator"})
    shared.set_accounts({**ACCOUNTS, "ada": account("ada", groups=["foundry-devs"])})
    login(acme, shared, "ada")
    shared.set_accounts({**ACCOUNTS, "ada": account("ada", groups=["foundry-ops"])})
    moved = shared.access_token("foundry-acme", "ada")
    response = api(acme, moved).get("/api/v1/runs")
    assert (response.status_code, code(response)) == (401, "role_changed")
    assert [e.data.get("reason") for e in audit_events("acme", action="auth.token.rejected")] == ["role_changed"]
    login(acme, shared, "ada")
    assert api(acme, moved).get("/api/v1/runs").status_code == 200
