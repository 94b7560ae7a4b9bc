"""A link sent before invitation issues were recorded (`User.invited_at` NULL: the "legacy" links
docs/roles.md lets live until they expire or the next issue) does not open a workspace's imported
copy, where the source's owner could not kill it: the import gives such members a new issue."""

import io
import uuid

from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.services import InvitationTokens, member_add, member_invite_reissue
from apps.lifecycle.archive import tenant_export, tenant_import
from tests.conftest import client_for


class _LinksBeforeIssuesWereRecorded(PasswordResetTokenGenerator):
    """InvitationTokens as it was before `User.invited_at` (as tests/accounts/test_invitation_reissue.py)."""

    key_salt = InvitationTokens.key_salt

    def _make_hash_value(self, user, timestamp) -> str:
        return f"{super()._make_hash_value(user, timestamp)}{user.role}"


def test_a_link_from_before_issues_were_recorded_does_not_open_the_imported_copy(acme, settings, tmp_path):
    """Nothing of the source (tokens, sessions, links) opens the copy; a leaked link is dead once
    the member is sent a new one."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    with schema_context("acme"):
        owner = User.objects.get(email="owner@acme.test")
        invitee = member_add(actor=owner, email="legacy@acme.test", role="admin")
        User.objects.filter(pk=invitee.pk).update(invited_at=None)  # as the migration left it
        invitee.refresh_from_db()
        token = _LinksBeforeIssuesWereRecorded().make_token(invitee)
    leaked = reverse("accounts:invite_accept", args=[urlsafe_base64_encode(force_bytes(invitee.pk)), token])

    out = io.BytesIO()
    tenant_export(acme, out)  # an owner's export: the rows as they are
    copy = tenant_import(io.BytesIO(out.getvalue()), slug=f"r{uuid.uuid4().hex[:10]}")

    # The link leaked; the source's owner sends a new one, which kills it on the source.
    with schema_context("acme"):
        member_invite_reissue(actor=owner, member=User.objects.get(pk=invitee.pk), base_url="http://acme.localhost/")
    assert client_for(acme).get(leaked, follow=True).context["validlink"] is False

    page = client_for(copy).get(leaked, follow=True)
    assert page.context["validlink"] is False, "the source's legacy invitation link opens the imported copy"
