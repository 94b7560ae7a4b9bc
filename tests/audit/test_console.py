"""The audit pages: a workspace's (owners and admins) and the platform's (operators) — list with
filter and pages, one event, the chain's status badge, and that each sees only its own chain."""

import pytest
from django.core.cache import cache
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.audit.models import PLATFORM
from apps.audit.services import audit_actor_erase, audit_record
from apps.audit.verify import chain_status
from tests.audit.test_api import tampered
from tests.conftest import audit_events, client_for, tenant_user


def record(schema: str, action: str, **kwargs) -> int:
    with schema_context(schema):
        return audit_record(action=action, **kwargs).seq


def page(response) -> str:
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


@pytest.fixture
def admin_client(acme) -> Client:
    return client_for(acme, "admin@acme.test")


# --- the workspace's page --------------------------------------------------------------------------


def test_it_lists_events_with_actor_labels_and_an_export_link(acme, admin_client):
    owner = tenant_user(acme, "owner@acme.test")
    seq = record("acme", "test.console.listed", actor=owner, target=("manifest", "triage"), outcome="denied")
    html = page(admin_client.get("/audit/"))
    row = html[html.index(f'<tr data-seq="{seq}">') :].split("</tr>")[0]
    assert "owner@acme.test" in row and f"user:{owner.pk}" in row
    assert "<code>test.console.listed</code>" in row and "manifest:triage" in row and 'data-outcome="denied"' in row
    assert f'href="/audit/events/{seq}/"' in row
    assert 'href="/api/v1/audit/export?format=jsonl"' in html
    assert '<a href="/audit/" aria-current="page">Audit</a>' in html


def test_the_filter_box_takes_aip160_and_explains_a_bad_filter(acme, admin_client):
    record("acme", "test.console.kept")
    record("acme", "test.console.other", outcome="failure")
    html = page(admin_client.get("/audit/", {"filter": 'action = "test.console.*" AND outcome = failure'}))
    assert "test.console.other" in html and "test.console.kept" not in html
    response = admin_client.get("/audit/", {"filter": "outcome = maybe"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "invalid_value" in html and "at position 10" in html and "No events match this filter" in html
    assert 'value="outcome = maybe"' in html
    for text in ('action = "a\x00"', 'time > "9999-12-31T23:59:59-01:00"'):
        assert admin_client.get("/audit/", {"filter": text}).status_code == 400


def test_older_events_are_a_page_token_away(acme, admin_client):
    seqs = [record("acme", f"test.console.page.{n}") for n in range(55)]
    first = page(admin_client.get("/audit/", {"filter": 'action = "test.console.page.*"'}))
    assert f'data-seq="{seqs[-1]}"' in first and f'data-seq="{seqs[4]}"' not in first
    older = first.split('data-testid="older"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = page(admin_client.get("/audit/" + older))
    assert [f'data-seq="{s}"' in second for s in seqs[:5]] == [True] * 5
    assert f'data-seq="{seqs[5]}"' not in second and 'data-testid="older"' not in second
    assert admin_client.get("/audit/", {"page_token": "forged"}).status_code == 400


def test_an_event_page_shows_every_field_the_hashes_and_its_neighbours(acme, admin_client):
    owner = tenant_user(acme, "owner@acme.test")
    before = record("acme", "test.console.before")
    seq = record("acme", "test.console.detail", actor=owner, data={"b": [1, 2], "a": "ünï"})
    after = record("acme", "test.console.after")
    (event,) = audit_events("acme", seq=seq)
    html = page(admin_client.get(f"/audit/events/{seq}/"))
    assert "&quot;a&quot;: &quot;ünï&quot;,\n  &quot;b&quot;: [\n    1,\n    2\n  ]" in html
    assert event.hash in html and event.prev_hash in html and "recomputed: matches" in html
    assert f"the hash of #{before}" in html
    assert f'href="/audit/events/{before}/" rel="prev"' in html and f'href="/audit/events/{after}/" rel="next"' in html
    assert "owner@acme.test" in html
    for missing in (after + 1, 0, 10**25):
        assert admin_client.get(f"/audit/events/{missing}/").status_code == 404


def test_an_event_pages_details_are_drawn_with_direction_characters_escaped(acme, admin_client):
    """An event's details hold text from outside (an IdP's `sub` claim, a name): drawn as the run
    pages draw JSON, a U+202E escaped (`\\u202e`), so it cannot reorder the evidence around it."""
    seq = record("acme", "test.console.direction", data={"subject": "abc\u202edef"})
    html = page(admin_client.get(f"/audit/events/{seq}/"))
    assert "\u202e" not in html and "abc\\u202edef" in html


def test_an_erased_actor_is_shown_by_pseudonymous_id_only(acme, admin_client):
    owner = tenant_user(acme, "owner@acme.test")
    seq = record("acme", "test.console.erased", actor=owner)
    assert audit_actor_erase(tenant_id=acme.pk, actor_id=f"user:{owner.pk}")
    html = page(admin_client.get("/audit/", {"filter": 'action = "test.console.erased"'}))
    row = html[html.index(f'<tr data-seq="{seq}">') :].split("</tr>")[0]
    assert f"user:{owner.pk}" in row and "owner@acme.test" not in row
    detail = page(admin_client.get(f"/audit/events/{seq}/"))
    assert "personal data erased" in detail and "owner@acme.test" not in detail


def test_the_badge_loads_after_the_page_then_comes_from_the_cache(acme, admin_client):
    html = page(admin_client.get("/audit/"))
    assert 'hx-get="/audit/status/"' in html and "Intact" not in html
    badge = page(admin_client.get("/audit/status/"))
    last = len(audit_events("acme"))
    assert 'data-intact="true"' in badge and f"#{last} latest" in badge and "no signed checkpoint yet" in badge
    html = page(admin_client.get("/audit/"))
    assert 'data-intact="true"' in html and 'hx-get="/audit/status/"' not in html


def test_the_badge_says_where_the_chain_is_broken(superuser, acme, admin_client):
    record("acme", "test.console.after_the_tampered_one")
    with tampered(superuser, acme, 1):
        badge = page(admin_client.get("/audit/status/"))
        assert 'data-intact="false"' in badge and "BROKEN at #1</strong> (altered)" in badge
        assert 'data-testid="hash-mismatch"' in page(admin_client.get("/audit/events/1/"))
        # Cached briefly: the page shows what was found, without verifying again.
        assert "BROKEN at #1" in page(admin_client.get("/audit/"))
    cache.clear()
    assert 'data-intact="true"' in page(admin_client.get("/audit/status/"))


@pytest.mark.parametrize("email", ["viewer@acme.test", "developer@acme.test", "operator@acme.test"])
def test_members_without_audit_view_see_neither_the_page_nor_the_menu_entry(acme, email):
    client = client_for(acme, email)
    for path in ("/audit/", "/audit/status/", "/audit/events/1/"):
        assert client.get(path).status_code == 403, path
    assert ">Audit</a>" not in page(client.get("/"))


def test_the_owner_sees_the_page_and_anonymous_people_are_sent_to_sign_in(acme):
    assert client_for(acme, "owner@acme.test").get("/audit/").status_code == 200
    response = Client(HTTP_HOST="acme.localhost").get("/audit/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_workspace_page_never_shows_another_workspaces_events(acme, globex, admin_client):
    acme_last = record("acme", "test.console.acme")
    globex_seq = record("globex", "test.console.globex_secret")
    while globex_seq <= acme_last + 1:
        globex_seq = record("globex", "test.console.globex_secret")
    assert "globex_secret" not in page(admin_client.get("/audit/", {"filter": 'action = "test.console.*"'}))
    assert admin_client.get(f"/audit/events/{globex_seq}/").status_code == 404
    assert "test.console.acme" in page(admin_client.get(f"/audit/events/{acme_last}/"))
    assert "globex_secret" in page(client_for(globex, "owner@globex.test").get(f"/audit/events/{globex_seq}/"))
    # The badge of each is its own chain's.
    assert f"#{acme_last} latest" in page(admin_client.get("/audit/status/"))
    assert f"#{globex_seq} latest" in page(client_for(globex, "owner@globex.test").get("/audit/status/"))


# --- the platform's page (operator host) -----------------------------------------------------------


def test_operators_see_the_platform_chain_only(acme, operator_client):
    seq = record("public", "test.console.platform", actor="ops", target=("tenant", acme.pk))
    record("acme", "test.console.tenant_only")
    html = page(operator_client.get("/audit/"))
    assert "Platform audit log" in html and f'data-seq="{seq}"' in html
    assert "test.console.platform" in html and "test.console.tenant_only" not in html
    assert "/api/v1/audit/export" not in html
    assert '<a href="/audit/" aria-current="page">Audit</a>' in html
    detail = page(operator_client.get(f"/audit/events/{seq}/"))
    assert "test.console.platform" in detail and "service:ops" in detail
    badge = page(operator_client.get("/audit/status/"))
    assert 'data-intact="true"' in badge and f"#{seq} latest" in badge
    assert chain_status(PLATFORM, compute=False)["last_seq"] == seq
    filtered = page(operator_client.get("/audit/", {"filter": 'action = "test.console.platform"'}))
    assert filtered.count("<tr data-seq=") == 1


def test_the_platform_page_is_for_operators_only(acme):
    with schema_context("public"):
        User.objects.create_user("notstaff@platform.test", "x-long-password-1", is_staff=False)
    client = client_for(None, "notstaff@platform.test")
    for path in ("/audit/", "/audit/status/", "/audit/events/1/"):
        assert client.get(path).status_code == 403, path
    response = Client(HTTP_HOST="localhost").get("/audit/")
    assert response.status_code == 302 and "/login/" in response["Location"]
    # A tenant's owner on the tenant's host gets the tenant's page, never the platform's.
    html = page(client_for(acme, "owner@acme.test").get("/audit/"))
    assert "Platform audit log" not in html
