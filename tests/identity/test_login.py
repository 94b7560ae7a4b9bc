"""Sign-in through the workspace's own identity provider: a real OpenID provider (panva's
oidc-provider, tests/idp) on loopback, our login and callback views driven with the test
client, the provider's login form answered by the fixture. Every refusal is a 403 with a stable
code, an `auth.login.failed` event with the reason, and no member created."""

from types import SimpleNamespace
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.audit.services import subject_digest
from apps.identity import jwks, oidc
from apps.identity.login import claims_email
from apps.identity.models import ExternalIdentity
from apps.identity.oidc import sso_config_forget
from apps.identity.services import sso_disable
from tests.conftest import PASSWORD, audit_events, client_for
from tests.identity.conftest import configure
from tests.oidc_provider import generate_key

pytestmark = pytest.mark.usefixtures("loopback_allowed")

SECRET = "acme-client-secret-0123456789"
GROUPS = {"foundry-admins": "admin", "foundry-devs": "developer"}


def account(login: str, email: str | None = None, groups=(), verified=True) -> dict:
    return {
        "sub": f"sub-{login}",
        "email": email or f"{login}@acme.test",
        "email_verified": verified,
        "name": login.title(),
        "groups": list(groups),
    }


ACCOUNTS = {
    "ada": account("ada", groups=["foundry-admins"]),
    "bob": account("bob"),
    "eve": account("eve", email="eve@evil.test"),
    "newdev": account("newdev", groups=["foundry-devs"]),
    "admin": account("admin", email="admin@acme.test", groups=["foundry-admins"]),
    "unverified": account("unverified", email="developer@acme.test", verified=None),
}


def client_config(tenant, audience=None) -> dict:
    host = f"http://{tenant.slug}.localhost"
    return {
        "client_id": f"foundry-{tenant.slug}",
        "client_secret": SECRET,
        "redirect_uris": [f"{host}/sso/callback/"],
        "post_logout_redirect_uris": [f"{host}/login/"],
        "audience": audience or f"api://foundry-{tenant.slug}",
    }


@pytest.fixture
def provider(oidc_provider_factory, acme):
    return oidc_provider_factory(clients=[client_config(acme)], accounts=ACCOUNTS)


def sso(tenant, provider, **fields):
    fields = {
        "client_secret": SECRET,
        "scopes": "openid email profile groups",
        "roles_claim": "groups",
        "role_map": GROUPS,
        "allowed_domains": ["acme.test"],
        "audience": f"api://foundry-{tenant.slug}",
        **fields,
    }
    return configure(tenant, provider, **fields)


def start(tenant, client: Client | None = None) -> tuple[Client, str]:
    """Our /sso/login/: a client holding the session, and the provider URL it redirects to."""
    client = client or Client(HTTP_HOST=f"{tenant.slug}.localhost")
    response = client.get("/sso/login/")
    assert response.status_code == 302, response.content
    return client, response["Location"]


def finish(client: Client, callback: str):
    parts = urlsplit(callback)
    assert parts.path == "/sso/callback/", callback
    return client.get(f"{parts.path}?{parts.query}")


def login(tenant, provider, who: str):
    client, authorize = start(tenant)
    return client, finish(client, provider.follow_login(authorize, who))


def member(tenant, email: str) -> User | None:
    with schema_context(tenant.schema_name):
        return User.objects.filter(email=email).first()


def refused(response, code: str) -> None:
    assert response.status_code == 403, response.content[:300]
    assert f"<code>{code}</code>".encode() in response.content or code.encode() in response.content, response.content[
        :500
    ]


def test_the_authorization_request_uses_pkce_state_and_nonce(acme, provider):
    sso(acme, provider)
    _client, authorize = start(acme)
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(provider.metadata["authorization_endpoint"])
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
    assert query["redirect_uri"] == ["http://acme.localhost/sso/callback/"]
    assert query["client_id"] == ["foundry-acme"] and "openid" in query["scope"][0].split()


def test_a_new_member_signs_in_with_the_role_of_their_groups(acme, provider):
    sso(acme, provider)
    client, response = login(acme, provider, "ada")
    assert (response.status_code, response["Location"]) == (302, "/")
    ada = member(acme, "ada@acme.test")
    assert (ada.role, ada.full_name, ada.has_usable_password()) == ("admin", "Ada", False)
    with schema_context(acme.schema_name):
        identity = ExternalIdentity.objects.get(user=ada)
    assert (identity.issuer, identity.subject) == (provider.issuer, "sub-ada")
    assert client.get("/members/").status_code == 200  # signed in, as an admin
    assert audit_events("acme", action="auth.login", data={"method": "sso"})[-1].actor_id == f"user:{ada.pk}"
    assert audit_events("acme", action="member.provisioned", data={"role": "admin"})
    assert audit_events("acme", action="identity.linked", data={"subject": subject_digest("sub-ada")})


def test_a_deactivated_members_sso_session_ends(acme, provider):
    sso(acme, provider)
    client, _response = login(acme, provider, "bob")
    assert client.get("/members/").status_code == 200
    with schema_context(acme.schema_name):
        User.objects.filter(email="bob@acme.test").update(is_active=False)
    assert client.get("/members/").status_code == 302


def test_roles_are_resynced_at_every_sign_in(acme, provider):
    sso(acme, provider)
    login(acme, provider, "ada")
    provider.set_accounts({**ACCOUNTS, "ada": account("ada", groups=["foundry-devs"])})
    login(acme, provider, "ada")
    assert member(acme, "ada@acme.test").role == "developer"
    provider.set_accounts({**ACCOUNTS, "ada": account("ada", groups=["unmapped"])})
    login(acme, provider, "ada")
    assert member(acme, "ada@acme.test").role == "viewer"
    changes = [(e.data["from"], e.data["to"]) for e in audit_events("acme", action="member.role_synced")]
    assert changes == [("admin", "developer"), ("developer", "viewer")]


def test_owners_are_never_demoted_by_the_provider(acme, provider):
    sso(acme, provider)
    owner_account = account("owner", email="owner@acme.test", groups=[])
    provider.set_accounts({**ACCOUNTS, "owner": owner_account})
    _client, response = login(acme, provider, "owner")
    assert response.status_code == 302
    assert member(acme, "owner@acme.test").role == "owner"


def test_a_refused_sign_in_ends_the_session_it_started_in_and_records_that_sign_out(acme, provider):
    """A member signed in who starts an SSO sign-in that is refused is signed out (the failed
    sign-in leaves nobody signed in), and the trail says so: one `auth.logout` of that member."""
    sso(acme, provider)
    client = client_for(acme, "developer@acme.test")
    client, authorize = start(acme, client)
    refused(finish(client, provider.follow_login(authorize, "eve")), "email_domain_refused")
    assert not client.session.get("_auth_user_id")
    (ended,) = audit_events("acme", action="auth.logout")
    assert (ended.actor_id, ended.data) == (
        f"user:{member(acme, 'developer@acme.test').pk}",
        {"sso": True, "reason": "email_domain_refused"},
    )


def test_a_disallowed_email_domain_is_refused(acme, provider):
    sso(acme, provider)
    client, response = login(acme, provider, "eve")
    refused(response, "email_domain_refused")
    assert member(acme, "eve@evil.test") is None
    assert not client.session.get("_auth_user_id")
    failed = audit_events("acme", action="auth.login.failed", data={"reason": "email_domain_refused"})
    assert failed and failed[-1].outcome == "failure"


def test_without_jit_only_existing_members_sign_in(acme, provider):
    sso(acme, provider, jit_enabled=False)
    _client, response = login(acme, provider, "newdev")
    refused(response, "user_not_provisioned")
    assert member(acme, "newdev@acme.test") is None
    # An existing member is linked, the provider asserting the address verified.
    _client, response = login(acme, provider, "admin")
    assert response.status_code == 302
    with schema_context(acme.schema_name):
        assert ExternalIdentity.objects.get(subject="sub-admin").user.email == "admin@acme.test"


def test_an_unverified_address_never_takes_over_an_existing_member(acme, provider):
    sso(acme, provider)
    _client, response = login(acme, provider, "unverified")  # claims developer@acme.test, unverified
    refused(response, "email_unverified")  # the workspace limits its domains: verified addresses only
    sso(acme, provider, allowed_domains=[])
    _client, response = login(acme, provider, "unverified")
    refused(response, "identity_conflict")
    with schema_context(acme.schema_name):
        assert not ExternalIdentity.objects.exists()


def test_an_address_the_provider_does_not_vouch_for_does_not_pass_the_allowed_domains(acme, oidc_provider_factory):
    """A provider that lets its users choose their address and sends no `email_verified` (Entra ID
    multi-tenant apps: "nOAuth") would let anyone there sign up as someone@acme.test."""
    outsider = {**account("mallory", email="mallory@acme.test"), "sub": "mallory-in-another-directory"}
    outsider.pop("email_verified")
    provider = oidc_provider_factory(clients=[client_config(acme)], accounts={"mallory": outsider})
    sso(acme, provider, allowed_domains=["acme.test"])
    _client, response = login(acme, provider, "mallory")
    refused(response, "email_unverified")
    with schema_context(acme.schema_name):
        assert not User.objects.filter(email="mallory@acme.test").exists()
    sso(acme, provider, allowed_domains=[])  # no domain fence: just-in-time sign-up, as documented
    _client, response = login(acme, provider, "mallory")
    assert response.status_code == 302


def test_the_same_email_at_two_providers_is_two_people(acme, provider, oidc_provider_factory):
    sso(acme, provider)
    login(acme, provider, "ada")
    other = oidc_provider_factory(
        clients=[client_config(acme)], accounts={"ada": {**account("ada"), "sub": "another-ada"}}
    )
    sso(acme, other)
    _client, response = login(acme, other, "ada")
    refused(response, "identity_conflict")
    with schema_context(acme.schema_name):
        assert ExternalIdentity.objects.filter(user__email="ada@acme.test").count() == 1


def test_a_bad_or_replayed_state_is_refused(acme, provider):
    sso(acme, provider)
    client, authorize = start(acme)
    callback = provider.follow_login(authorize, "bob")
    parts = urlsplit(callback)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    refused(client.get(f"{parts.path}?{urlencode({**query, 'state': 'forged'})}"), "state_invalid")
    assert finish(client, callback).status_code == 302
    client.post("/logout/")
    refused(finish(client, callback), "state_invalid")  # the same answer again
    # Another browser (no such state in its session) cannot use the answer either.
    refused(finish(Client(HTTP_HOST="acme.localhost"), callback), "state_invalid")
    reasons = [e.data["reason"] for e in audit_events("acme", action="auth.login.failed")]
    assert reasons == ["state_invalid"]  # once a minute per reason and address: anyone can send one


def test_the_rfc9207_issuer_parameter_is_checked(acme, provider):
    sso(acme, provider)
    assert provider.metadata.get("authorization_response_iss_parameter_supported") is True
    client, authorize = start(acme)
    parts = urlsplit(provider.follow_login(authorize, "bob"))
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["iss"] == provider.issuer
    refused(client.get(f"{parts.path}?{urlencode({**query, 'iss': 'https://evil.example'})}"), "iss_mismatch")
    client, authorize = start(acme)
    parts = urlsplit(provider.follow_login(authorize, "bob"))
    query = {k: v[0] for k, v in parse_qs(parts.query).items() if k != "iss"}
    refused(client.get(f"{parts.path}?{urlencode(query)}"), "iss_missing")


@pytest.mark.parametrize("nonce", [None, "nonce-of-an-earlier-sign-in-0123456789"])
def test_a_missing_or_replayed_nonce_is_refused(acme, provider, nonce):
    sso(acme, provider)
    client, authorize = start(acme)
    parts = urlsplit(authorize)
    query = {k: v[0] for k, v in parse_qs(parts.query).items() if k != "nonce"}
    if nonce:
        query["nonce"] = nonce
    tampered = f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"
    refused(finish(client, provider.follow_login(tampered, "bob")), "token_nonce_invalid")
    assert member(acme, "bob@acme.test") is None


def test_the_providers_error_answer_is_refused(acme, provider):
    sso(acme, provider)
    client, authorize = start(acme)
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    query = urlencode({"error": "access_denied", "state": state, "iss": provider.issuer})
    refused(client.get(f"/sso/callback/?{query}"), "idp_error")


def test_a_rotated_signing_key_is_fetched_once(acme, provider, monkeypatch):
    sso(acme, provider)
    fetches = []
    real_fetch = jwks._fetch
    monkeypatch.setattr(jwks, "_fetch", lambda *a: fetches.append(a[0]) or real_fetch(*a))
    assert login(acme, provider, "bob")[1].status_code == 302
    assert len(fetches) == 1
    assert login(acme, provider, "bob")[1].status_code == 302
    assert len(fetches) == 1  # cached
    provider.restart(keys=[generate_key("RS256"), provider.keys[0]])  # the provider rotates
    assert login(acme, provider, "bob")[1].status_code == 302
    assert len(fetches) == 2  # one refetch for the new key id, no restart of ours
    provider.restart(keys=[generate_key("RS256")])  # rotates again within the minute
    refused(login(acme, provider, "bob")[1], "token_key_unknown")
    assert len(fetches) == 2  # refetches are rate-limited (one per minute per tenant)


def test_a_wrong_client_secret_or_a_provider_that_is_down_is_refused(acme, provider):
    sso(acme, provider, client_secret="not-the-secret")
    refused(login(acme, provider, "bob")[1], "idp_refused")
    sso(acme, provider)
    client, authorize = start(acme)
    callback = provider.follow_login(authorize, "bob")
    provider.stop()
    refused(finish(client, callback), "idp_unreachable")


def test_sso_required_refuses_passwords_except_the_break_glass_owner(acme, provider):
    sso(acme, provider, sso_required=True, break_glass_email="owner@acme.test")
    client = Client(HTTP_HOST="acme.localhost")
    response = client.post("/login/", {"username": "admin@acme.test", "password": PASSWORD})
    assert response.status_code == 200 and b'data-testid="sso-required"' in response.content
    assert not client.session.get("_auth_user_id")
    # Refused in the words of a wrong password: no answer tells the break-glass owner's address.
    wrong = client.post("/login/", {"username": "owner@acme.test", "password": "not-the-password"})
    assert response.context["form"].non_field_errors() == wrong.context["form"].non_field_errors()
    assert audit_events("acme", action="auth.login.failed", data={"reason": "sso_required"})
    response = client.post("/login/", {"username": "owner@acme.test", "password": PASSWORD})
    assert response.status_code == 302 and client.session.get("_auth_user_id")
    # SSO still works for everyone else.
    assert login(acme, provider, "ada")[1].status_code == 302


def test_a_password_session_ends_when_sso_becomes_required(acme, provider):
    client = Client(HTTP_HOST="acme.localhost")
    assert client.post("/login/", {"username": "admin@acme.test", "password": PASSWORD}).status_code == 302
    assert client.get("/members/").status_code == 200
    sso(acme, provider, sso_required=True, break_glass_email="owner@acme.test")
    assert client.get("/members/").status_code == 302  # back to the sign-in page


def test_logout_ends_the_session_here_and_at_the_provider(acme, provider):
    sso(acme, provider)
    client, response = login(acme, provider, "ada")
    id_token = client.session["oidc_id_token"]
    response = client.post("/logout/")
    assert response.status_code == 302
    end = urlsplit(response["Location"])
    query = parse_qs(end.query)
    assert response["Location"].startswith(provider.metadata["end_session_endpoint"])
    assert query["id_token_hint"] == [id_token]
    assert query["post_logout_redirect_uri"] == ["http://acme.localhost/login/"]
    assert not client.session.get("_auth_user_id")
    assert audit_events("acme", action="auth.logout", data={"sso": True})


def test_login_pages_without_sso_configured(acme):
    client = Client(HTTP_HOST="acme.localhost")
    assert client.get("/sso/login/").status_code == 404
    response = client.get("/sso/callback/?code=x&state=y")
    refused(response, "sso_not_configured")
    assert b"sso-login" not in client.get("/login/").content


def test_a_member_who_signs_in_with_sso_has_joined_and_gets_no_password_link(acme, provider):
    """bob has no password, yet he has joined: a "new invitation link" (which sets a password)
    would let whoever holds it sign in as bob without the identity provider."""
    sso(acme, provider)
    assert login(acme, provider, "bob")[1].status_code == 302
    bob = member(acme, "bob@acme.test")
    admin = client_for(acme, "admin@acme.test")
    row = admin.get("/members/").content.decode().split(f'id="member-{bob.pk}"')[1].split("</tr>")[0]
    assert "Active" in row and "New invite link" not in row
    assert admin.post(f"/members/{bob.pk}/invite/").status_code == 400
    with schema_context(acme.schema_name):
        assert not User.objects.get(pk=bob.pk).has_usable_password()


def test_an_answer_to_no_sign_in_of_this_session_leaves_the_session_alone(acme, provider):
    """The callback is a GET any site can link to: a forged state must not sign anyone out."""
    sso(acme, provider)
    client = client_for(acme, "owner@acme.test")
    assert client.get("/sso/callback/?state=forged&code=x").status_code == 403
    assert client.get("/members/").status_code == 200


@pytest.mark.parametrize("change", ["disabled", "new_issuer", "domain_narrowed"])
def test_an_sso_session_ends_when_sso_no_longer_admits_it(acme, provider, oidc_provider_factory, change):
    """Sessions opened through the provider end once SSO is disabled, points at another provider,
    or no longer allows the member's email domain (docs/sso.md)."""
    sso(acme, provider)
    client, _response = login(acme, provider, "ada")
    assert client.get("/members/").status_code == 200
    if change == "disabled":
        with schema_context(acme.schema_name):
            sso_disable(actor="test")
    elif change == "new_issuer":
        other = oidc_provider_factory(clients=[client_config(acme)], accounts=ACCOUNTS)
        sso(acme, other)
    else:
        sso(acme, provider, allowed_domains=["acme-subsidiary.test"])
    with schema_context(acme.schema_name):
        sso_config_forget()
    assert client.get("/members/").status_code == 302  # back to the sign-in page


def test_an_sso_session_outlives_an_unrelated_change_of_sso(acme, provider):
    sso(acme, provider)
    client, _response = login(acme, provider, "ada")
    sso(acme, provider, jit_enabled=False)
    with schema_context(acme.schema_name):
        sso_config_forget()
    assert client.get("/members/").status_code == 200


@pytest.mark.parametrize("verified", [False, "false", "False"])  # some providers send a string
def test_an_address_the_provider_says_is_not_verified_is_refused(acme, oidc_provider_factory, verified):
    provider = oidc_provider_factory(
        clients=[client_config(acme)], accounts={"newbie": account("newbie", verified=verified)}
    )
    sso(acme, provider)
    _client, response = login(acme, provider, "newbie")
    refused(response, "email_unverified")
    assert member(acme, "newbie@acme.test") is None


def test_a_verified_address_asserted_at_userinfo_passes_the_allowed_domains(monkeypatch):
    """OIDC Core 5.4: an ID token may carry `email` without `email_verified`, which the provider
    asserts at userinfo: fetched, so a workspace with allowed domains admits the member."""
    calls = []

    def userinfo(method, url, **kwargs):
        calls.append(url)
        return {"sub": "ada-1", "email": "ada@acme.test", "email_verified": True}

    monkeypatch.setattr(oidc, "_idp_call", userinfo)
    backend = oidc.TenantOIDCBackend()
    backend.config = SimpleNamespace(
        userinfo_endpoint="https://idp.example/userinfo", roles_claim="", allowed_domains=["acme.test"]
    )
    id_token = {"sub": "ada-1", "email": "ada@acme.test", "iss": "https://idp.example", "aud": "foundry"}
    claims = backend.get_userinfo("access-token", "id-token", id_token)
    assert claims_email(backend.config, claims) == "ada@acme.test"
    assert calls == ["https://idp.example/userinfo"]


def test_signing_in_with_sso_over_a_password_session_makes_it_an_sso_session(acme, provider):
    """A member signed in with a password who signs in through SSO as themselves gets a new
    session key and an SSO session (recorded as one, judged by SSO's rules): it outlives SSO
    becoming required, as the SSO sign-in it was recorded as. The library kept the password
    session as it was, key and all, which then ended with the passwords."""
    sso(acme, provider)
    client = Client(HTTP_HOST="acme.localhost")
    assert client.post("/login/", {"username": "admin@acme.test", "password": PASSWORD}).status_code == 302
    password_key = client.session.session_key
    _client, authorize = start(acme, client)
    assert finish(client, provider.follow_login(authorize, "admin")).status_code == 302
    assert client.session.session_key != password_key
    assert client.session["_auth_user_backend"] == "apps.identity.oidc.TenantOIDCBackend", client.session.items()
    sso(acme, provider, sso_required=True, break_glass_email="owner@acme.test")
    assert client.get("/members/").status_code == 200


def test_a_member_removed_while_their_sso_sign_in_completes_is_refused_not_a_500(acme, provider, monkeypatch):
    """The member is removed between the provider's answer being resolved to them and their session
    being made: the sign-in is refused (403 `user_inactive`), no session, no `auth.login` — not a
    500 from Django saving `last_login` on a row that is gone."""
    sso(acme, provider)
    login(acme, provider, "bob")  # bob exists, then signs in again
    resolve = oidc.sso_login_resolve

    def resolved_then_removed(config, claims, *, request=None):
        user = resolve(config, claims, request=request)
        owner = User.objects.get(email="owner@acme.test")
        from apps.accounts.services import member_remove

        member_remove(actor=owner, member=User.objects.get(pk=user.pk))
        return user

    monkeypatch.setattr(oidc, "sso_login_resolve", resolved_then_removed)
    with schema_context(acme.schema_name):
        logins = len(audit_events(acme.schema_name, action="auth.login"))
    client, response = login(acme, provider, "bob")
    refused(response, "user_inactive")
    assert member(acme, "bob@acme.test") is None
    assert client.get("/members/").status_code == 302  # not signed in
    assert len(audit_events(acme.schema_name, action="auth.login")) == logins


def test_a_member_the_provider_moved_to_another_address_signs_in_on_it(acme, oidc_provider_factory):
    """The company retires acme-old.test: the provider moves ada to ada@acme.test, the owner
    narrows the allowed domains to acme.test. Her sign-in was accepted on the new address, but the
    session was judged on the address stored at her first sign-in: every page sent her back to
    the sign-in page. The stored address follows the provider's, audited without either address."""
    provider = oidc_provider_factory(
        clients=[client_config(acme)], accounts={"ada": account("ada", email="ada@acme-old.test")}
    )
    sso(acme, provider, allowed_domains=["acme.test", "acme-old.test"], role_map={})
    assert login(acme, provider, "ada")[1].status_code == 302
    provider.set_accounts({"ada": account("ada", email="ada@acme.test")})
    sso(acme, provider, allowed_domains=["acme.test"], role_map={})
    client, response = login(acme, provider, "ada")
    assert (response.status_code, response["Location"]) == (302, "/"), response.content[:300]
    assert client.get("/members/").status_code == 200
    with schema_context(acme.schema_name):
        assert User.objects.filter(email__startswith="ada@").values_list("email", flat=True).get() == "ada@acme.test"
    (synced,) = audit_events("acme", action="member.email_synced")
    assert "ada@" not in str(synced.data)


def test_a_move_to_another_members_address_is_an_identity_conflict(acme, oidc_provider_factory):
    provider = oidc_provider_factory(clients=[client_config(acme)], accounts={"ada": account("ada")})
    sso(acme, provider, role_map={})
    assert login(acme, provider, "ada")[1].status_code == 302
    provider.set_accounts({"ada": account("ada", email="admin@acme.test")})
    client, response = login(acme, provider, "ada")
    assert response.status_code == 403
    assert client.get("/members/").status_code == 302  # no session
    with schema_context(acme.schema_name):
        assert User.objects.filter(email="admin@acme.test").count() == 1
    assert audit_events("acme", action="auth.login.failed")[-1].data["reason"] == "identity_conflict"
