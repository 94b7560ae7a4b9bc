from django.test import Client
from django_tenants.utils import schema_context, schema_exists

from apps.accounts.models import User
from apps.tenants.models import Tenant
from tests.conftest import client_for
from tests.data_growth import tenants_add


def test_an_operator_creates_a_tenant_from_the_console(operator_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            "/tenants/new/",
            {"slug": "initech", "name": "Initech", "plan": "team", "owner_email": "bill@initech.test"},
        )
    assert response.status_code == 200
    assert response.context["invite_url"].startswith("http://initech.localhost/invite/")
    assert Tenant.objects.get(slug="initech").plan == "team"
    assert Client(HTTP_HOST="initech.localhost").get("/login/").status_code == 200


def test_a_bad_tenant_form_shows_errors_and_creates_nothing(operator_client):
    before = Tenant.objects.count()
    response = operator_client.post(
        "/tenants/new/", {"slug": "Public!", "name": "", "plan": "team", "owner_email": "x"}
    )
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"slug", "name", "owner_email"}
    assert Tenant.objects.count() == before


def test_a_reserved_slug_is_refused_by_the_console(operator_client):
    response = operator_client.post(
        "/tenants/new/", {"slug": "admin", "name": "A", "plan": "free", "owner_email": "a@a.test"}
    )
    assert response.status_code == 400
    assert response.context["form"].errors.as_data()["slug"][0].code == "slug_reserved"
    assert not schema_exists("admin")


def test_an_operator_suspends_and_resumes_a_tenant(operator_client, acme, django_capture_on_commit_callbacks):
    member = client_for(acme, "owner@acme.test")
    with django_capture_on_commit_callbacks(execute=True):
        assert operator_client.post("/tenants/acme/suspend/").status_code == 302
    assert Tenant.objects.get(slug="acme").status == "suspended"
    assert member.get("/").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        assert operator_client.post("/tenants/acme/resume/").status_code == 302
    assert member.get("/").status_code == 302  # the suspension ended the session: signed in again,
    assert client_for(acme, "owner@acme.test").get("/").status_code == 200  # the member is let in


def test_status_changes_of_unknown_tenants_are_404(operator_client):
    assert operator_client.post("/tenants/nope/suspend/").status_code == 404


def test_tenant_members_and_non_staff_cannot_use_the_operator_console(acme):
    with schema_context("public"):
        User.objects.create_user("notstaff@platform.test", "x-long-password-1", is_staff=False)
    client = client_for(None, "notstaff@platform.test")
    assert client.get("/").status_code == 403
    assert client.post("/tenants/acme/suspend/").status_code == 403
    assert Tenant.objects.get(slug="acme").status == "active"


def test_operator_pages_do_not_exist_on_tenant_hosts(acme):
    client = client_for(acme, "owner@acme.test")
    assert client.post("/tenants/globex/suspend/").status_code == 404
    assert client.post("/tenants/new/", {"slug": "evil", "name": "E", "plan": "free"}).status_code == 404


# --- finding a tenant among many ---------------------------------------------------------------


def _slugs(response) -> list[str]:
    return [tenant.slug for tenant in response.context["tenants"]]


def test_the_tenant_list_finds_tenants_by_slug_or_name(operator_client, acme):
    tenants_add(60)
    assert _slugs(operator_client.get("/", {"q": "ACM"})) == ["acme"]
    by_name = operator_client.get("/", {"q": f"  {acme.name.upper()}  "})
    assert _slugs(by_name) == ["acme"] and by_name.context["search"] == acme.name.upper()
    nothing = operator_client.get("/", {"q": "no-such-tenant"})
    assert nothing.status_code == 200 and _slugs(nothing) == []
    assert "holds “no-such-tenant”" in nothing.content.decode()
    assert len(_slugs(operator_client.get("/", {"q": "Scale "}))) == 50


def test_a_search_longer_than_the_field_is_cut_not_refused(operator_client, acme):
    response = operator_client.get("/", {"q": "acme" + "x" * 5000})
    assert response.status_code == 200 and len(response.context["search"]) == 100


def test_the_pager_keeps_the_search(operator_client):
    tenants_add(60)
    response = operator_client.get("/", {"q": "Scale", "page": "2"})
    assert response.context["page"].number == 2 and len(_slugs(response)) == 10
    assert 'href="?q=Scale&amp;page=1"' in response.content.decode()


def test_a_created_tenant_is_shown_though_the_list_has_pages_before_it(
    operator_client, django_capture_on_commit_callbacks
):
    """The new tenant's row sits beside its invitation link whatever page it falls on."""
    tenants_add(60)  # slugs "s…" sort before "zeta"
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            "/tenants/new/", {"slug": "zeta", "name": "Zeta", "plan": "free", "owner_email": "z@zeta.test"}
        )
    assert response.status_code == 200 and _slugs(response) == ["zeta"]
    assert response.context["search"] == "zeta"


def test_after_suspending_the_list_shows_that_tenant(operator_client, acme, django_capture_on_commit_callbacks):
    tenants_add(60)
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post("/tenants/acme/suspend/")
    assert response.status_code == 302 and response["Location"] == "/?q=acme"
    shown = operator_client.get(response["Location"])
    assert _slugs(shown) == ["acme"]
    assert "Suspended" in shown.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post("/tenants/acme/resume/")
