"""`manage.py invite_owners SLUG`: an operator's new invitation links for a workspace none of
whose owners has joined — the link `create_tenant` printed was lost or expired, and only an
owner may send an owner a link (docs/roles.md), so the workspace was stranded. Refused once an
owner has joined: its owners send links themselves, and an operator holding a link could sign
in as that owner."""

import io
import uuid

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.tenants.services import tenant_provision
from tests.conftest import audit_events, client_for

PASSWORD = "a-long-new-password-42"


def _links(slug: str) -> list[str]:
    out = io.StringIO()
    call_command("invite_owners", slug, "--base-url", "http://{domain}/", stdout=out)
    return [line.rsplit(": ", 1)[1] for line in out.getvalue().splitlines()]


def _opens(tenant, link: str) -> bool:
    return client_for(tenant).get(link.removeprefix(f"http://{tenant.primary_host}"), follow=True).context["validlink"]


@pytest.fixture
def stranded(db, acme):
    """A workspace whose only owner never took the link provisioning made."""
    slug = f"s{uuid.uuid4().hex[:8]}"
    return tenant_provision(slug=slug, name="Stranded Co", owner_email=f"owner@{slug}.test").tenant


def test_a_stranded_workspace_gets_new_owner_links_and_the_old_ones_die(stranded, acme):
    first, *more = _links(stranded.slug)
    assert not more and _opens(stranded, first)
    second = _links(stranded.slug)[0]
    assert _opens(stranded, second) and not _opens(stranded, first)
    events = audit_events(stranded.schema_name, action="member.invite_issued")
    assert [e.actor_id for e in events][-2:] == ["service:cli:invite_owners"] * 2
    assert not audit_events("acme", action="member.invite_issued", actor_id="service:cli:invite_owners")


def test_once_an_owner_has_joined_the_operator_gets_no_link(stranded):
    with schema_context(stranded.schema_name):
        owner = User.objects.get(role="owner")
        owner.set_password(PASSWORD)
        owner.save(update_fields=["password"])
        invited_at = owner.invited_at
    issued = len(audit_events(stranded.schema_name, action="member.invite_issued"))
    with pytest.raises(CommandError, match="has joined"):
        call_command("invite_owners", stranded.slug)
    with schema_context(stranded.schema_name):
        assert User.objects.get(pk=owner.pk).invited_at == invited_at
    assert len(audit_events(stranded.schema_name, action="member.invite_issued")) == issued


def test_a_bad_slug_or_base_url_is_named(db):
    with pytest.raises(CommandError, match="No tenant"):
        call_command("invite_owners", "no-such-slug")
    with pytest.raises(CommandError, match="base-url"):
        call_command("invite_owners", "acme", "--base-url", "http://{host}/")
