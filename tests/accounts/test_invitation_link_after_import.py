"""An invitation link opens only the workspace that issued it: the link's token is bound to the
workspace too, so a copy made by export and import (same member ids, same issue times) is not
opened by a link of the source — where a new link would not reach to kill it — as the source's
API tokens and sessions do not open the copy (docs/export.md)."""

import io
import uuid

import pytest
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.services import InvitationTokens, member_add, member_invite_reissue, member_invite_url
from apps.identity.models import ExternalIdentity
from apps.lifecycle.archive import tenant_export, tenant_import
from apps.tenants.models import Tenant
from tests.conftest import audit_events, client_for

PASSWORD = "a-long-new-password-42"


class _LinksBeforeIssuesWereRecorded(PasswordResetTokenGenerator):
    """InvitationTokens as it was before `User.invited_at`: links sent then live until they expire."""

    key_salt = InvitationTokens.key_salt

    def _make_hash_value(self, user, timestamp) -> str:
        return f"{super()._make_hash_value(user, timestamp)}{user.role}"


@pytest.mark.parametrize("legacy", [False, True], ids=["link", "link-from-before-issues-were-recorded"])
def test_a_link_killed_on_the_source_does_not_set_the_password_on_its_imported_copy(acme, settings, tmp_path, legacy):
    """A link sent before issues were recorded (`invited_at` NULL) neither: the import gives its
    member a new issue."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    with schema_context("acme"):
        owner = User.objects.get(email="owner@acme.test")
        invitee = member_add(actor=owner, email="newcomer@acme.test", role="admin")
        leaked = member_invite_url(user=invitee, base_url="http://acme.localhost/").removeprefix(
            "http://acme.localhost"
        )
        if legacy:
            User.objects.filter(pk=invitee.pk).update(invited_at=None)  # as the migration left it
            invitee.refresh_from_db()
            token = _LinksBeforeIssuesWereRecorded().make_token(invitee)
            uid = urlsafe_base64_encode(force_bytes(invitee.pk))
            leaked = reverse("accounts:invite_accept", args=[uid, token])

    out = io.BytesIO()
    tenant_export(acme, out)
    copy = tenant_import(io.BytesIO(out.getvalue()), slug=f"r{uuid.uuid4().hex[:10]}")

    # The link leaked; the source's owner sends the member a new one, which kills it there.
    with schema_context("acme"):
        member_invite_reissue(actor=owner, member=User.objects.get(pk=invitee.pk), base_url="http://acme.localhost/")
    assert client_for(acme).get(leaked, follow=True).context["validlink"] is False

    # On the copy the leaked link still opens the form and sets the admin's password.
    page = client_for(copy).get(leaked, follow=True)
    assert page.context["validlink"] is False, "the source's invitation link opens the imported copy"


def test_a_member_imported_without_a_password_is_invited_again_to_set_one_and_an_sso_member_is_not(
    acme, settings, tmp_path
):
    """An admin's export holds every password unusable (docs/export.md): in the copy, a member who
    had signed in to the source but has no single sign-on identity has not joined, and an admin
    sends them a link to set a password; one with an SSO identity has joined (signs in with SSO),
    and no admin may set a password for them through a link."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    with schema_context("acme"):
        User.objects.filter(email__in=["viewer@acme.test", "developer@acme.test"]).update(last_login=timezone.now())
        ExternalIdentity.objects.create(
            issuer="https://idp.example", subject="dev-1", user=User.objects.get(email="developer@acme.test")
        )
    out = io.BytesIO()
    tenant_export(acme, out, password_hashes=False)  # an admin's export
    copy = tenant_import(io.BytesIO(out.getvalue()), slug=f"r{uuid.uuid4().hex[:10]}")
    with schema_context(copy.schema_name):
        viewer, developer = (User.objects.get(email=f"{r}@acme.test") for r in ("viewer", "developer"))
        assert not viewer.has_usable_password() and not viewer.has_joined
        assert developer.has_joined

    admin = client_for(copy, "admin@acme.test")
    assert admin.post(f"/members/{developer.pk}/invite/").status_code == 400
    response = admin.post(f"/members/{viewer.pk}/invite/")
    assert response.status_code == 200, response.content[:300]
    link = response.context["invite_url"].removeprefix(f"http://{copy.slug}.localhost")
    invitee = client_for(copy)
    page = invitee.get(link, follow=True)
    assert page.context["validlink"] is True
    invitee.post(page.redirect_chain[-1][0], {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert invitee.post("/login/", {"username": "viewer@acme.test", "password": PASSWORD}).status_code == 302


def _imported(archive, tmp_path) -> tuple[str, list[str]]:
    """Import `archive` with the operator's command: the new slug and the owner links it printed."""
    slug, printed = f"r{uuid.uuid4().hex[:10]}", io.StringIO()
    call_command("import_tenant", str(archive), slug=slug, stdout=printed, stderr=io.StringIO())
    return slug, [line for line in printed.getvalue().splitlines() if line.startswith("Owner invitation link")]


@pytest.mark.parametrize(("owners_export", "links"), [(False, ["owner@acme.test"]), (True, [])])
def test_importing_an_admins_export_prints_a_link_for_each_owner_who_cannot_sign_in(
    acme, settings, tmp_path, owners_export, links
):
    """Only owners send owners links, and after an admin's export none can sign in: the operator's
    import prints one link per such owner (audited), which sets that owner's password once. An
    owner's export keeps passwords, and no link is printed."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    archive = tmp_path / "acme.zip"
    with archive.open("wb") as out:
        tenant_export(acme, out, password_hashes=owners_export)
    slug, printed = _imported(archive, tmp_path)
    assert [line.split(" for ")[1].split(":")[0] for line in printed] == links
    if not links:
        return
    copy = Tenant.objects.get(slug=slug)
    assert len(audit_events(copy.schema_name, action="member.invite_issued")) == 1
    invitee = client_for(copy)
    page = invitee.get("/" + printed[0].split("://", 1)[1].split("/", 1)[1], follow=True)
    assert page.context["validlink"] is True
    invitee.post(page.redirect_chain[-1][0], {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert invitee.post("/login/", {"username": "owner@acme.test", "password": PASSWORD}).status_code == 302
