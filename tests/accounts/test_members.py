import re

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import URLPattern, URLResolver, get_resolver
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Permission, Role, role_has_permission
from tests.conftest import PASSWORD, audit_events, client_for, tenant_user

PUBLIC_TENANT_VIEWS = {
    "accounts:login",
    "accounts:logout",
    "accounts:invite_accept",
    "audit_keys",
    "platform_jwks",
    "identity:sso_login",
    "identity:sso_callback",
    "protected_resource",
    "protected_resource_mcp",
}


def _patterns(resolver, prefix="", namespace=""):
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from _patterns(p, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            yield f"{namespace}{p.name}", prefix + str(p.pattern), p.callback


# Console views; the API's own gate is tested in tests/api, git's (token only) in tests/catalog/test_git.py.
TENANT_VIEWS = [v for v in _patterns(get_resolver("foundry.urls_tenant")) if not v[1].startswith(("api/", "git/"))]


def _path(pattern: str, object_id: int) -> str:
    return "/" + re.sub(r"<int:\w+>", str(object_id), pattern)


def test_every_tenant_view_is_guarded_by_a_permission_or_explicitly_public():
    for name, _pattern, view in TENANT_VIEWS:
        assert name in PUBLIC_TENANT_VIEWS or hasattr(view, "required_permission"), name


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(
    ("name", "pattern", "view"),
    [v for v in TENANT_VIEWS if v[0] not in PUBLIC_TENANT_VIEWS],
    ids=[v[0] for v in TENANT_VIEWS if v[0] not in PUBLIC_TENANT_VIEWS],
)
def test_role_enforcement_on_every_console_view(acme, role, name, pattern, view):
    """Each role gets through exactly the views the matrix allows it, and changes nothing otherwise."""
    client = client_for(acme, f"{role}@acme.test")
    target = tenant_user(acme, "viewer@acme.test")
    with schema_context("acme"):
        before = list(User.objects.values_list("email", "role"))
    response = client.post(_path(pattern, target.pk), {"role": "viewer", "email": "n@acme.test"})
    allowed = role_has_permission(role, getattr(view, "post_permission", view.required_permission))
    if allowed:
        assert response.status_code != 403, response.content
    else:
        assert response.status_code == 403, (role, name)
        with schema_context("acme"):
            assert list(User.objects.values_list("email", "role")) == before


def test_members_page_lists_members_for_a_viewer_without_controls(acme):
    response = client_for(acme, "viewer@acme.test").get("/members/")
    assert response.status_code == 200
    assert [m.email for m in response.context["members"]] == [
        "admin@acme.test",
        "developer@acme.test",
        "operator@acme.test",
        "owner@acme.test",
        "viewer@acme.test",
    ]
    assert response.context["can_manage"] is False
    assert b"Add a member" not in response.content


def test_an_admin_adds_a_member_who_accepts_the_invitation(acme):
    client = client_for(acme, "admin@acme.test")
    response = client.post("/members/add/", {"email": "New@Acme.test", "full_name": "New", "role": "developer"})
    assert response.status_code == 200
    invite_url = response.context["invite_url"]
    assert invite_url.startswith("http://acme.localhost/invite/")
    with schema_context("acme"):
        member = User.objects.get(email="new@acme.test")
        assert (member.role, member.has_usable_password()) == ("developer", False)
    assert audit_events("acme", action="member.added", target_id=str(member.pk))
    # The invitee follows the link and sets a password.
    invitee = client_for(acme)
    path = invite_url.removeprefix("http://acme.localhost")
    form_page = invitee.get(path, follow=True)
    assert form_page.context["validlink"] is True
    set_url = form_page.redirect_chain[-1][0]
    pw = "a-long-new-password-42"
    assert invitee.post(set_url, {"new_password1": pw, "new_password2": pw}).status_code == 302
    assert invitee.post("/login/", {"username": "new@acme.test", "password": pw}).status_code == 302
    # The link is spent.
    assert invitee.get(path, follow=True).context["validlink"] is False


def test_an_invitation_link_of_one_tenant_is_useless_on_another(acme, globex):
    response = client_for(acme, "owner@acme.test").post("/members/add/", {"email": "x@acme.test", "role": "viewer"})
    path = response.context["invite_url"].removeprefix("http://acme.localhost")
    page = client_for(globex).get(path, follow=True)
    assert page.status_code == 200 and page.context["validlink"] is False


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        ({"email": "owner@acme.test", "role": "viewer"}, "email", "member_exists"),
        ({"email": "bad", "role": "viewer"}, "email", None),
        ({"email": "a@b.test", "role": "emperor"}, "role", None),
    ],
)
def test_bad_member_input_is_refused_and_changes_nothing(acme, data, field, code):
    with schema_context("acme"):
        before = User.objects.count()
    response = client_for(acme, "owner@acme.test").post("/members/add/", data)
    assert response.status_code == 400
    assert field in response.context["add_form"].errors
    if code:
        assert response.context["add_form"].errors.as_data()[field][0].code == code
    with schema_context("acme"):
        assert User.objects.count() == before


def test_an_admin_cannot_make_or_touch_owners(acme):
    client = client_for(acme, "admin@acme.test")
    owner = tenant_user(acme, "owner@acme.test")
    viewer = tenant_user(acme, "viewer@acme.test")
    assert client.post(f"/members/{viewer.pk}/role/", {"role": "owner"}).status_code == 403
    assert client.post(f"/members/{owner.pk}/role/", {"role": "viewer"}).status_code == 403
    assert client.post(f"/members/{owner.pk}/remove/").status_code == 403
    assert client.post("/members/add/", {"email": "o2@acme.test", "role": "owner"}).status_code == 403
    assert tenant_user(acme, "owner@acme.test").role == "owner"
    assert tenant_user(acme, "viewer@acme.test").role == "viewer"


def test_the_last_owner_cannot_be_demoted_or_removed(acme):
    client = client_for(acme, "owner@acme.test")
    owner = tenant_user(acme, "owner@acme.test")
    response = client.post(f"/members/{owner.pk}/role/", {"role": "admin"})
    assert response.status_code == 400
    assert b"last_owner" in response.content
    assert client.post(f"/members/{owner.pk}/remove/").status_code == 400
    assert tenant_user(acme, "owner@acme.test").role == "owner"


def test_role_change_over_htmx_returns_the_row(acme):
    client = client_for(acme, "owner@acme.test")
    viewer = tenant_user(acme, "viewer@acme.test")
    response = client.post(f"/members/{viewer.pk}/role/", {"role": "operator"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith(f'<tr id="member-{viewer.pk}"')
    assert tenant_user(acme, "viewer@acme.test").role == "operator"
    (event,) = audit_events("acme", action="member.role_changed")
    assert event.data == {"from": "viewer", "to": "operator"}


def test_a_removed_member_loses_their_open_session_at_once(acme):
    viewer_client = client_for(acme, "viewer@acme.test")
    viewer = tenant_user(acme, "viewer@acme.test")
    assert client_for(acme, "owner@acme.test").post(f"/members/{viewer.pk}/remove/").status_code == 302
    assert viewer_client.get("/").status_code == 302
    with schema_context("acme"):
        assert not User.objects.filter(email="viewer@acme.test").exists()


def test_members_of_another_tenant_cannot_be_reached_by_id(acme, globex):
    """globex's owner posting acme user ids changes nothing in acme: ids resolve in globex."""
    acme_viewer = tenant_user(acme, "viewer@acme.test")
    client = client_for(globex, "owner@globex.test")
    response = client.post(f"/members/{acme_viewer.pk}/remove/")
    assert response.status_code in (400, 404)
    assert tenant_user(acme, "viewer@acme.test").role == "viewer"


def test_nobody_can_remove_themselves(acme):
    client = client_for(acme, "admin@acme.test")
    admin = tenant_user(acme, "admin@acme.test")
    assert client.post(f"/members/{admin.pk}/remove/").status_code == 400


def test_permission_is_a_closed_set():
    assert role_has_permission("emperor", Permission.DASHBOARD_VIEW) is False


def test_an_oversized_email_is_a_form_error_not_a_crash(acme):
    response = client_for(acme, "owner@acme.test").post(
        "/members/add/", {"email": "a" * 300 + "@x.test", "role": "viewer"}
    )
    assert response.status_code == 400
    assert "email" in response.context["add_form"].errors


@pytest.mark.parametrize("change", ["demote", "remove", "erase"])
def test_two_owners_taking_each_other_away_at_once_leave_one_owner(
    fresh_tenant, django_db_blocker, monkeypatch, change
):
    """Each change counts the other owners, then writes: without the owners locked first, two at
    once each see the other remain (the count is slowed here so that both would count first).
    The second, once it holds the owners, finds its own actor no owner, or no member, any more."""
    import threading
    import time

    from django.db import connections

    from apps.accounts import services
    from apps.lifecycle.erasure import member_erase

    slug = fresh_tenant.slug
    with django_db_blocker.unblock(), schema_context(fresh_tenant.schema_name):
        first = User.objects.get(email=f"owner@{slug}.test")
        second = User.objects.create_user(f"owner2@{slug}.test", PASSWORD, role=Role.OWNER)
    counted = services._owners_remaining_without

    def slow_count(user):
        remaining = counted(user)
        time.sleep(0.5)
        return remaining

    monkeypatch.setattr(services, "_owners_remaining_without", slow_count)
    refusals = []

    def take_away(actor, member):
        try:
            with schema_context(fresh_tenant.schema_name):
                if change == "demote":
                    services.member_role_change(actor=actor, member=member, role=Role.ADMIN)
                elif change == "remove":
                    services.member_remove(actor=actor, member=member)
                else:
                    member_erase(actor=actor, email=member.email)
        except ValidationError as e:
            refusals.append(e.code)
        except PermissionDenied:
            refusals.append("permission_denied")
        finally:
            connections.close_all()

    with django_db_blocker.unblock():
        threads = [threading.Thread(target=take_away, args=pair) for pair in ((first, second), (second, first))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with schema_context(fresh_tenant.schema_name):
            owners = User.objects.filter(role=Role.OWNER, is_active=True).count()
    assert (owners, refusals) == (1, ["permission_denied"])


def test_an_invitation_link_stops_working_once_the_member_is_made_an_owner(acme):
    """Only owners hand out an owner's link (it sets that owner's password): a link an admin took
    while the member was a viewer is spent by the promotion."""
    admin = client_for(acme, "admin@acme.test")
    added = admin.post("/members/add/", {"email": "pending@acme.test", "role": "viewer"})
    link = added.context["invite_url"].removeprefix("http://acme.localhost")
    pending = tenant_user(acme, "pending@acme.test")
    assert (
        client_for(acme, "owner@acme.test").post(f"/members/{pending.pk}/role/", {"role": "owner"}).status_code == 302
    )
    page = client_for(acme).get(link, follow=True)
    assert page.context["validlink"] is False
