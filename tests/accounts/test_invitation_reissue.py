"""Each issue of a member's invitation link (adding the member, provisioning a workspace for its
owner, every reissue) makes the links issued before it unusable (apps/accounts/services.py,
InvitationTokens): an owner reissues because the first link went astray or leaked."""

from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.services import (
    InvitationTokens,
    member_add,
    member_invite_reissue,
    member_invite_url,
    member_remove,
    member_role_change,
)
from apps.tenants.services import tenant_provision
from tests.api.conftest import api, issue
from tests.conftest import audit_events, client_for, tenant_user

PASSWORD = "a-long-new-password-42"


def _path(url: str, tenant) -> str:
    return url.removeprefix(f"http://{tenant.slug}.localhost")


def _accept(tenant, path: str):
    """Follow the link and set a password: the answer to the form, or the invalid-link page."""
    invitee = client_for(tenant)
    page = invitee.get(path, follow=True)
    if not page.context["validlink"]:
        return page
    return invitee.post(page.redirect_chain[-1][0], {"new_password1": PASSWORD, "new_password2": PASSWORD})


def _link_is_valid(tenant, path: str) -> bool:
    return client_for(tenant).get(path, follow=True).context["validlink"]


def _pending(tenant, email: str) -> User:
    with schema_context(tenant.schema_name):
        owner = User.objects.get(email=f"owner@{tenant.slug}.test")
        return member_add(actor=owner, email=email, role="viewer")


def test_a_reissue_makes_the_earlier_links_unusable_and_the_newest_works(acme):
    admin = client_for(acme, "admin@acme.test")
    first = _path(
        admin.post("/members/add/", {"email": "late@acme.test", "role": "viewer"}).context["invite_url"], acme
    )
    member = tenant_user(acme, "late@acme.test")
    second = _path(admin.post(f"/members/{member.pk}/invite/").context["invite_url"], acme)
    third = _path(admin.post(f"/members/{member.pk}/invite/").context["invite_url"], acme)
    assert len({first, second, third}) == 3

    for earlier in (first, second):
        page = _accept(acme, earlier)
        assert page.status_code == 200 and page.context["validlink"] is False
        assert b"This invitation link is no longer valid" in page.content
    member = tenant_user(acme, "late@acme.test")
    assert not member.has_joined
    assert audit_events("acme", action="member.invite_accepted", target_id=str(member.pk)) == []
    assert len(audit_events("acme", action="member.invite_issued", target_id=str(member.pk))) == 2

    assert _accept(acme, third).status_code == 302
    assert tenant_user(acme, "late@acme.test").check_password(PASSWORD)
    (accepted,) = audit_events("acme", action="member.invite_accepted", target_id=str(member.pk))
    assert accepted.actor_id == f"user:{member.pk}"
    assert client_for(acme).post("/login/", {"username": "late@acme.test", "password": PASSWORD}).status_code == 302


def test_a_link_opened_before_a_reissue_cannot_set_the_password_after_it(acme):
    """The set-password form was reached with the old link; the reissue comes before it is sent."""
    member = _pending(acme, "late@acme.test")
    with schema_context("acme"):
        old = _path(member_invite_url(user=member, base_url="http://acme.localhost/"), acme)
    holder = client_for(acme)
    form_page = holder.get(old, follow=True)
    assert form_page.context["validlink"] is True
    with schema_context("acme"):
        member_invite_reissue(actor=tenant_user(acme, "owner@acme.test"), member=member, base_url="http://x/")
    response = holder.post(form_page.redirect_chain[-1][0], {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert response.status_code == 200 and response.context["validlink"] is False
    assert not tenant_user(acme, "late@acme.test").has_joined


def test_the_same_issue_gives_links_that_stay_valid_together(acme):
    """Showing the current link again (member_invite_url) is no new issue."""
    member = _pending(acme, "late@acme.test")
    with schema_context("acme"):
        links = [_path(member_invite_url(user=member, base_url="http://acme.localhost/"), acme) for _ in range(2)]
    assert all(_link_is_valid(acme, link) for link in links)


def test_an_api_reissue_makes_the_link_from_adding_the_member_unusable(acme):
    acme_admin = api(acme, issue(acme, role="admin", scopes=["admin"]))
    created = acme_admin.post(
        "/api/v1/members", {"email": "late@acme.test", "role": "viewer"}, content_type="application/json"
    )
    first = _path(created.json()["invite_url"], acme)
    reissued = acme_admin.post(
        f"/api/v1/members/{created.json()['member']['id']}/invite", content_type="application/json"
    )
    assert reissued.status_code == 200
    assert not _link_is_valid(acme, first)
    assert _link_is_valid(acme, _path(reissued.json()["invite_url"], acme))


def test_a_refused_reissue_leaves_the_current_link_working(acme):
    """An admin may not reissue an invited owner's link: nothing is issued, nothing invalidated."""
    with schema_context("acme"):
        invited = member_add(actor=tenant_user(acme, "owner@acme.test"), email="new-owner@acme.test", role="owner")
        link = _path(member_invite_url(user=invited, base_url="http://acme.localhost/"), acme)
    refused = client_for(acme, "admin@acme.test").post(f"/members/{invited.pk}/invite/")
    assert refused.status_code == 403
    assert tenant_user(acme, "new-owner@acme.test").invited_at == invited.invited_at
    assert audit_events("acme", action="member.invite_issued", target_id=str(invited.pk)) == []
    assert _link_is_valid(acme, link)


def test_a_joined_member_gets_no_reissue_and_keeps_their_row(acme):
    developer = tenant_user(acme, "developer@acme.test")
    response = client_for(acme, "owner@acme.test").post(f"/members/{developer.pk}/invite/")
    assert response.status_code == 400 and b"invite_not_pending" in response.content
    assert tenant_user(acme, "developer@acme.test").invited_at is None


class _TokensBeforeIssuesWereRecorded(PasswordResetTokenGenerator):
    """InvitationTokens as it was before `User.invited_at`: the links already sent then."""

    key_salt = InvitationTokens.key_salt

    def _make_hash_value(self, user, timestamp) -> str:
        return f"{super()._make_hash_value(user, timestamp)}{user.role}"


def test_a_link_sent_before_issues_were_recorded_works_until_the_next_issue(acme):
    member = _pending(acme, "late@acme.test")
    with schema_context("acme"):
        User.objects.filter(pk=member.pk).update(invited_at=None)  # as the migration leaves it
        member.refresh_from_db()
        token = _TokensBeforeIssuesWereRecorded().make_token(member)
    old = reverse("accounts:invite_accept", args=[urlsafe_base64_encode(force_bytes(member.pk)), token])
    assert _link_is_valid(acme, old)
    with schema_context("acme"):
        member_invite_reissue(actor=tenant_user(acme, "owner@acme.test"), member=member, base_url="http://x/")
    assert not _link_is_valid(acme, old)


def test_a_reissue_on_one_workspace_cannot_reach_a_member_of_another(acme, globex):
    """acme's owner posting a globex member's id reissues nothing there: ids resolve in acme."""
    with schema_context("acme"):
        acme_ids = set(User.objects.values_list("pk", flat=True))
    pending = _pending(globex, "late@globex.test")
    while pending.pk in acme_ids:  # an id that names nobody in acme, so the answer is a plain 404
        pending = _pending(globex, f"late{pending.pk}@globex.test")
    with schema_context("globex"):
        link = _path(member_invite_url(user=pending, base_url="http://globex.localhost/"), globex)

    console = client_for(acme, "owner@acme.test").post(f"/members/{pending.pk}/invite/")
    token = api(acme, issue(acme, role="owner", scopes=["admin"]))
    over_api = token.post(f"/api/v1/members/{pending.pk}/invite", content_type="application/json")

    assert (console.status_code, over_api.status_code) == (404, 404)
    assert b"/invite/" not in console.content and "invite_url" not in over_api.json()
    assert tenant_user(globex, pending.email).invited_at == pending.invited_at
    assert audit_events("globex", action="member.invite_issued") == []
    assert audit_events("acme", action="member.invite_issued") == []
    assert _link_is_valid(globex, link)


def test_a_new_workspaces_owner_link_is_an_issue_and_a_password_owner_has_none(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invited = tenant_provision(slug="initech", name="Initech", owner_email="bill@initech.test")
        with_password = tenant_provision(
            slug="hooli", name="Hooli", owner_email="gavin@hooli.test", owner_password="a-long-owner-password-42"
        )
    assert invited.owner.invited_at is not None
    assert with_password.owner.invited_at is None
    with schema_context(invited.tenant.schema_name):
        link = _path(member_invite_url(user=invited.owner, base_url="http://initech.localhost/"), invited.tenant)
    assert _link_is_valid(invited.tenant, link)


def test_a_link_ended_by_a_role_change_stays_ended_when_the_role_changes_back(acme):
    """A role change ends the links sent so far (their token holds the role); changing the role
    back does not bring a leaked one back: the change is an issue moment of its own."""
    member = _pending(acme, "flip@acme.test")
    with schema_context(acme.schema_name):
        leaked = _path(member_invite_url(user=member, base_url="http://acme.localhost"), acme)
    assert _link_is_valid(acme, leaked)
    with schema_context(acme.schema_name):
        owner = User.objects.get(email="owner@acme.test")
        member_role_change(actor=owner, member=User.objects.get(pk=member.pk), role="developer")
        assert not _link_is_valid(acme, leaked)
        member_role_change(actor=owner, member=User.objects.get(pk=member.pk), role="viewer")
    assert not _link_is_valid(acme, leaked)
    with schema_context(acme.schema_name):
        current = _path(member_invite_url(user=User.objects.get(pk=member.pk), base_url="http://acme.localhost"), acme)
    assert _link_is_valid(acme, current)


def test_a_member_removed_while_their_invitation_form_is_submitted_gets_the_invalid_link_page_not_a_500(
    acme, monkeypatch
):
    """An admin removes the member between the page reading them and their password being set
    (made here from inside the form's validation, where a concurrent removal commits): the
    invitee is told the link is no longer valid, not answered a 500."""
    with schema_context("acme"):
        owner = User.objects.get(email="owner@acme.test")
        member = member_add(actor=owner, email="doomed@acme.test", role="viewer")
        path = member_invite_url(user=member, base_url="http://acme.localhost/").removeprefix("http://acme.localhost")

    invitee = client_for(acme)
    invitee.raise_request_exception = False
    page = invitee.get(path, follow=True)
    assert page.context["validlink"] is True
    set_url = page.redirect_chain[-1][0]

    clean = SetPasswordForm.clean

    def clean_then_removed_meanwhile(form):
        cleaned = clean(form)
        member_remove(actor=owner, member=User.objects.get(pk=member.pk))  # an admin, at that moment
        return cleaned

    monkeypatch.setattr(SetPasswordForm, "clean", clean_then_removed_meanwhile)
    response = invitee.post(set_url, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert response.status_code == 200, response.status_code
    assert response.context["validlink"] is False


def test_reloading_the_page_that_shows_a_new_link_does_not_make_it_unusable(acme):
    """A reload of the page a reissue answered with sent the reissue again, which made the link
    just copied and sent unusable: it is 409 `form_already_sent`, and that link still works."""
    admin = client_for(acme, "admin@acme.test")
    member = _pending(acme, "reload@acme.test")
    once = admin.get("/members/").context["once"]
    shown = admin.post(f"/members/{member.pk}/invite/", {"once": once})
    link = _path(shown.context["invite_url"], acme)
    again = admin.post(f"/members/{member.pk}/invite/", {"once": once})
    assert again.status_code == 409 and b"form_already_sent" in again.content
    assert _link_is_valid(acme, link)
    assert len(audit_events("acme", action="member.invite_issued")) == 1
