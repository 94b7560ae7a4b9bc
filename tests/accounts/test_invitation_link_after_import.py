"""An invitation link opens only the workspace that issued it: the link's token is bound to the
workspace too, so a copy made by export and import (same member ids, same issue times) is not
opened by a link of the source — where a new link would not reach to kill it — as the source's
API tokens and sessions do not open the copy (docs/export.md)."""

import io
import uuid

from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.services import member_add, member_invite_reissue, member_invite_url
from apps.lifecycle.archive import tenant_export, tenant_import
from tests.conftest import client_for

PASSWORD = "a-long-new-password-42"


def test_a_link_killed_on_the_source_does_not_set_the_password_on_its_imported_copy(acme, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    with schema_context("acme"):
        owner = User.objects.get(email="owner@acme.test")
        invitee = member_add(actor=owner, email="newcomer@acme.test", role="admin")
        leaked = member_invite_url(user=invitee, base_url="http://acme.localhost/").removeprefix(
            "http://acme.localhost"
        )

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
