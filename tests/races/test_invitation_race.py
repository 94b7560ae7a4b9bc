"""An invitation link is one use: setting the password spends it (apps/accounts/services.py,
InvitationTokens). Two submissions of the same link at once must not both set a password."""

from django.contrib.auth.forms import SetPasswordForm
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import member_invite_url
from tests.conftest import audit_events, client_for
from tests.races.conftest import Rendezvous, run_together


def _invitation_path(tenant) -> str:
    """The path of a new developer's invitation link (committed)."""
    with schema_context(tenant.schema_name):
        invitee = User.objects.create_user(f"new@{tenant.slug}.test", None, role=Role.DEVELOPER)
        url = member_invite_url(user=invitee, base_url=f"http://{tenant.slug}.localhost/")
    return url.split(".localhost", 1)[1]


def test_the_same_invitation_link_is_accepted_only_once_when_submitted_twice_at_once(
    fresh_tenant, django_db_blocker, monkeypatch
):
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        path = _invitation_path(tenant)
        # The link is opened in two browsers (the member's, and whoever else holds the link):
        # both pages are valid, since neither has set a password yet.
        clients, set_urls = [], []
        for _ in range(2):
            client = client_for(tenant)
            page = client.get(path, follow=True)
            assert page.context["validlink"] is True
            clients.append(client)
            set_urls.append(page.redirect_chain[-1][0])

        meet = Rendezvous()
        save = SetPasswordForm.save

        def save_meeting(self, *args, **kwargs):  # both submissions past the link's check
            meet.wait()
            return save(self, *args, **kwargs)

        monkeypatch.setattr(SetPasswordForm, "save", save_meeting)

        def submit(n):
            pw = f"a-long-new-password-{n}-of-two"
            return clients[n].post(set_urls[n], {"new_password1": pw, "new_password2": pw}).status_code

        results = run_together(lambda: submit(0), lambda: submit(1))
        accepted = audit_events(tenant.schema_name, action="member.invite_accepted")
    assert all(exc is None for _, exc in results), results
    statuses = [status for status, _ in results]
    # One submission sets the password (302); the other finds the link spent.
    assert statuses.count(302) == 1, f"both submissions of a one-use link succeeded: {statuses}"
    assert len(accepted) == 1, f"{len(accepted)} member.invite_accepted events for one link"


def test_control_one_after_the_other_the_second_submission_is_refused(fresh_tenant, django_db_blocker):
    """The same two browsers, one after the other: the link is spent by the first (this passes,
    so the failure above is the race, not the flow)."""
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        path = _invitation_path(tenant)
        pages = [(client := client_for(tenant), client.get(path, follow=True)) for _ in range(2)]
        statuses = [
            client.post(page.redirect_chain[-1][0], {"new_password1": pw, "new_password2": pw}).status_code
            for (client, page), pw in zip(pages, ["first-long-password-1", "second-long-password-2"], strict=True)
        ]
    assert statuses == [302, 200]
