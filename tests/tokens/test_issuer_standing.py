"""A token stands on the member who issued it: removing that member (or erasing them) revokes
every token they issued, lowering their role revokes those of their tokens that may do something
the new role may not — in the same transaction, one `token.revoked` event each with the reason.
Other members' tokens, tokens of services and commands, and another workspace's tokens whose
member has the same id are left alone."""

import importlib
from io import StringIO

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.services import member_role_change
from apps.identity.service_tokens import ServicePrincipal
from apps.lifecycle.erasure import member_erase
from apps.tokens.models import ApiToken, TokenPrincipal
from apps.tokens.services import token_authenticate, token_issue
from tests.api.conftest import api, issue
from tests.conftest import PASSWORD, audit_events, client_for, tenant_user

ALL_SCOPES = ["read", "write", "run", "admin"]


def issue_as(tenant, email: str, *, role: str = "admin", name: str = "mine") -> str:
    """A token issued by the member `email` of `tenant` (as the console does), its plaintext."""
    with schema_context(tenant.schema_name):
        actor = User.objects.get(email=email)
        return token_issue(actor=actor, name=name, role=role, scopes=ALL_SCOPES).plaintext


def stored(tenant, plaintext: str) -> ApiToken:
    with schema_context(tenant.schema_name):
        return ApiToken.objects.get(prefix=plaintext[3:15])


def works(tenant, plaintext: str) -> bool:
    status = api(tenant, plaintext).get("/api/v1/members").status_code
    assert status in (200, 401)
    return status == 200


def revocations(tenant, reason: str) -> list[tuple[str, str]]:
    events = audit_events(tenant.schema_name, action="token.revoked", data={"reason": reason})
    return [(e.target_id, e.actor_id) for e in events]


def remove(tenant, email: str, *, by: str = "owner@acme.test"):
    member = tenant_user(tenant, email)
    return client_for(tenant, by).post(f"/members/{member.pk}/remove/")


def test_it_records_the_member_who_issues_a_token_over_the_api_and_in_the_console(acme):
    admin = tenant_user(acme, "admin@acme.test")
    session = client_for(acme, "admin@acme.test")
    response = session.post(
        "/api/v1/tokens",
        {"name": "ci", "role": "developer", "scopes": ["read"]},
        content_type="application/json",
        HTTP_X_CSRFTOKEN="x",
    )
    assert response.status_code == 201, response.content
    assert response.json()["metadata"]["issued_by"] == admin.pk
    assert response.json()["metadata"]["revoked_reason"] == ""
    page = session.post("/settings/tokens/new/", {"name": "deploy", "role": "viewer", "scopes": ["read"]})
    assert page.status_code == 200
    assert stored(acme, page.context["plaintext"]).issued_by_id == admin.pk


def test_a_token_issued_by_a_token_rests_on_the_same_member_and_services_on_none(acme):
    admin = tenant_user(acme, "admin@acme.test")
    parent = issue_as(acme, "admin@acme.test")
    child = api(acme, parent).post(
        "/api/v1/tokens", {"name": "child", "role": "viewer", "scopes": ["read"]}, content_type="application/json"
    )
    assert child.status_code == 201, child.content
    assert child.json()["metadata"]["issued_by"] == admin.pk
    cli = issue(acme, name="from a command")  # actor "test": an operator's tool
    principal = ServicePrincipal({"sub": "service:worker", "role": "admin", "scope": "read admin"})
    with schema_context("acme"):
        service = token_issue(actor=principal, name="by a service", role="viewer", scopes=["read"])
    assert stored(acme, cli).issued_by_id is None
    assert service.token.issued_by_id is None


def test_removing_a_member_revokes_every_token_they_issued_and_nothing_else(acme):
    admin = tenant_user(acme, "admin@acme.test")
    owner = tenant_user(acme, "owner@acme.test")
    theirs = [issue_as(acme, "admin@acme.test", role=role, name=role) for role in ("admin", "developer", "viewer")]
    child = api(acme, theirs[0]).post(
        "/api/v1/tokens", {"name": "child", "role": "operator", "scopes": ["read"]}, content_type="application/json"
    )
    assert child.status_code == 201, child.content
    theirs.append(child.json()["token"])
    owners = issue_as(acme, "owner@acme.test", name="owner's")
    cli = issue(acme, name="from a command")
    already = issue_as(acme, "admin@acme.test", role="viewer", name="revoked by hand")
    assert api(acme, owners).delete(f"/api/v1/tokens/{stored(acme, already).pk}").status_code == 200
    assert all(works(acme, t) for t in theirs)

    assert remove(acme, "admin@acme.test").status_code == 302

    assert not any(works(acme, t) for t in theirs)  # 401 at the next request
    response = api(acme, theirs[0]).get("/api/v1/members")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_token")
    assert works(acme, owners) and works(acme, cli)
    revoked = [stored(acme, t) for t in theirs]
    assert {(t.revoked_reason, t.issued_by_id) for t in revoked} == {("issuer_removed", None)}
    assert stored(acme, already).revoked_reason == ""  # revoked by hand before: left as it was
    # One event per token, by whoever removed the member, beside the member's own event.
    assert sorted(revocations(acme, "issuer_removed")) == sorted((str(t.pk), f"user:{owner.pk}") for t in revoked)
    (removed,) = audit_events("acme", action="member.removed")
    assert removed.target_id == str(admin.pk)
    assert "Revoked (issuer removed)" in client_for(acme, "owner@acme.test").get("/settings/tokens/").content.decode()


def test_lowering_a_role_revokes_only_the_tokens_that_outrank_it(acme):
    admin = tenant_user(acme, "admin@acme.test")
    owner = tenant_user(acme, "owner@acme.test")
    tokens = {role: issue_as(acme, "admin@acme.test", role=role, name=role) for role in ("admin", "operator")}
    tokens |= {role: issue_as(acme, "admin@acme.test", role=role, name=role) for role in ("developer", "viewer")}
    others = issue_as(acme, "owner@acme.test", role="admin", name="owner's")

    response = client_for(acme, "owner@acme.test").post(f"/members/{admin.pk}/role/", {"role": "developer"})
    assert response.status_code in (200, 302), response.content
    assert tenant_user(acme, "admin@acme.test").role == "developer"

    # An operator token approves runs, which a developer may not: it goes too.
    assert {role: works(acme, t) for role, t in tokens.items()} == {
        "admin": False,
        "operator": False,
        "developer": True,
        "viewer": True,
    }
    assert works(acme, others)
    gone = [stored(acme, tokens[role]) for role in ("admin", "operator")]
    assert {t.revoked_reason for t in gone} == {"issuer_demoted"}
    assert {t.issued_by_id for t in gone} == {admin.pk}  # still theirs: they are still a member
    assert sorted(revocations(acme, "issuer_demoted")) == sorted((str(t.pk), f"user:{owner.pk}") for t in gone)

    # Lowered again, to viewer: only the developer token outranks that now; each event once.
    client_for(acme, "owner@acme.test").post(f"/members/{admin.pk}/role/", {"role": "viewer"})
    assert not works(acme, tokens["developer"]) and works(acme, tokens["viewer"])
    assert len(revocations(acme, "issuer_demoted")) == 3


def test_raising_a_role_revokes_nothing(acme):
    viewer = tenant_user(acme, "viewer@acme.test")
    with schema_context("acme"):
        User.objects.filter(pk=viewer.pk).update(role="admin")
    token = issue_as(acme, "viewer@acme.test", role="viewer")
    with schema_context("acme"):
        User.objects.filter(pk=viewer.pk).update(role="viewer")
    response = client_for(acme, "owner@acme.test").post(f"/members/{viewer.pk}/role/", {"role": "operator"})
    assert response.status_code in (200, 302)
    assert works(acme, token)
    assert not audit_events("acme", action="token.revoked")


def test_refused_removals_and_demotions_revoke_nothing(acme):
    owner = tenant_user(acme, "owner@acme.test")
    admin = tenant_user(acme, "admin@acme.test")
    owners = issue_as(acme, "owner@acme.test", role="owner")
    admins = issue_as(acme, "admin@acme.test", role="admin")
    admin_client = client_for(acme, "admin@acme.test")
    # An admin may not touch an owner; nobody removes themselves; the last owner stays one.
    assert admin_client.post(f"/members/{owner.pk}/remove/").status_code == 403
    assert admin_client.post(f"/members/{owner.pk}/role/", {"role": "viewer"}).status_code == 403
    assert admin_client.post(f"/members/{admin.pk}/remove/").status_code == 400
    response = client_for(acme, "owner@acme.test").post(f"/members/{owner.pk}/role/", {"role": "admin"})
    assert response.status_code == 400 and b"last_owner" in response.content
    assert works(acme, owners) and works(acme, admins)
    assert stored(acme, owners).revoked_at is None and stored(acme, admins).revoked_at is None
    assert not audit_events("acme", action="token.revoked")


def test_a_member_removed_meanwhile_issues_nothing(acme):
    """The session of a member removed while the request ran: the token would rest on no one."""
    with schema_context("acme"):
        stale = User.objects.get(email="admin@acme.test")
        User.objects.filter(pk=stale.pk).delete()
        with pytest.raises(PermissionDenied):
            token_issue(actor=stale, name="late", role="viewer", scopes=["read"])
        assert not ApiToken.objects.filter(name="late").exists()
    assert not audit_events("acme", action="token.issued")


def test_another_workspaces_member_with_the_same_id_keeps_their_tokens(acme, globex):
    """User ids repeat across workspaces (each has its own schema): removing acme's member 2
    does nothing to globex's member 2."""
    admin = tenant_user(acme, "admin@acme.test")
    with schema_context("globex"):
        assert not User.objects.filter(pk=admin.pk).exists()
        User.objects.create_user("admin@globex.test", PASSWORD, role="admin", id=admin.pk)
    globex_token = issue_as(globex, "admin@globex.test")
    acme_token = issue_as(acme, "admin@acme.test")
    assert stored(globex, globex_token).issued_by_id == stored(acme, acme_token).issued_by_id == admin.pk

    assert remove(acme, "admin@acme.test").status_code == 302

    assert not works(acme, acme_token)
    assert works(globex, globex_token)
    assert stored(globex, globex_token).revoked_at is None
    assert not audit_events("globex", action="token.revoked")
    assert len(audit_events("acme", action="token.revoked")) == 1


def test_erasing_a_member_revokes_their_tokens_too(acme):
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):  # an admin once, who issued a token then
        User.objects.filter(email="developer@acme.test").update(role="admin")
    token = issue_as(acme, "developer@acme.test", role="developer")
    with schema_context("acme"):
        member_erase(actor=owner, email="developer@acme.test")
    assert not works(acme, token)
    revoked = stored(acme, token)
    assert (revoked.revoked_reason, revoked.issued_by_id) == ("issuer_removed", None)
    assert revocations(acme, "issuer_removed") == [(str(revoked.pk), f"user:{owner.pk}")]


def test_tokens_issued_before_the_member_was_recorded_are_traced_to_them(acme):
    """The migration's backfill: `created_by` named the member by email, or the issuing token."""
    admin = tenant_user(acme, "admin@acme.test")
    parent = issue_as(acme, "admin@acme.test", name="parent")
    child = api(acme, parent).post(
        "/api/v1/tokens", {"name": "child", "role": "viewer", "scopes": ["read"]}, content_type="application/json"
    )
    assert child.status_code == 201, child.content
    call_command("create_api_token", "acme", "--name", "cli", "--role", "viewer", stdout=StringIO(), stderr=StringIO())
    with schema_context("acme"):
        ApiToken.objects.update(issued_by=None)
        migration = importlib.import_module("apps.tokens.migrations.0002_apitoken_issued_by")
        migration.issuers_find(django_apps, None)
        found = dict(ApiToken.objects.values_list("name", "issued_by"))
    assert found == {"parent": admin.pk, "child": admin.pk, "cli": None}
    with schema_context("acme"):
        ApiToken.objects.update(issued_by_token=None)
        migration = importlib.import_module("apps.tokens.migrations.0003_apitoken_issued_by_token")
        migration.issuing_tokens_find(django_apps, None)
        parents = dict(ApiToken.objects.values_list("name", "issued_by_token__name"))
    assert parents == {"parent": None, "child": "parent", "cli": None}


def test_a_member_demoted_meanwhile_issues_no_token_outranking_their_new_role(acme):
    """A request authenticated before its member was demoted (the session's user still says
    admin) issues its token after the demotion committed: the member's stored role, read under
    the lock, decides, so no admin token comes to rest on a viewer."""
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        stale = User.objects.get(email="admin@acme.test")
        member_role_change(actor=owner, member=User.objects.get(pk=stale.pk), role="viewer")
        with pytest.raises(PermissionDenied):
            token_issue(actor=stale, name="late", role="admin", scopes=["read", "write", "run", "admin"])
        assert not ApiToken.objects.filter(name="late").exists()


def test_a_token_revoked_by_its_members_demotion_issues_no_token_meanwhile(acme):
    """The same race through the API: the admin token a request authenticated with is revoked by
    its member's demotion before the request issues a token with it; that token, read again
    under a lock, is revoked, so it issues nothing."""
    owner = tenant_user(acme, "owner@acme.test")
    scopes = ["read", "write", "run", "admin"]
    with schema_context("acme"):
        admin = User.objects.get(email="admin@acme.test")
        parent = token_issue(actor=admin, name="parent", role="admin", scopes=scopes)
        principal = TokenPrincipal(token_authenticate(parent.plaintext))
        member_role_change(actor=owner, member=admin, role="viewer")
        with pytest.raises(PermissionDenied):
            token_issue(actor=principal, name="child", role="viewer", scopes=["read"], credential=parent.token)
        assert not ApiToken.objects.filter(name="child").exists()


def test_a_members_own_api_token_cannot_erase_them(acme):
    """Signed in, the admin is refused `erase_self`; an API token they issued acts as them
    (docs/roles.md), so it is refused the same way."""
    admin = tenant_user(acme, "admin@acme.test")
    body = {"email": "admin@acme.test"}

    console = client_for(acme, "admin@acme.test").post(
        "/api/v1/members/erase", body, content_type="application/json", HTTP_X_CSRFTOKEN="x"
    )
    assert console.status_code == 400 and console.json()["error"]["code"] == "erase_self", console.content

    with schema_context("acme"):
        token = token_issue(actor=admin, name="mine", role="admin", scopes=["read", "admin"]).plaintext
    response = api(acme, token).post("/api/v1/members/erase", body, content_type="application/json")

    with schema_context("acme"):
        still_there = User.objects.filter(pk=admin.pk).exists()
    assert (response.status_code, still_there) == (400, True), response.content
    assert response.json()["error"]["code"] == "erase_self"
