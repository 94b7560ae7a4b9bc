from django.test import Client
from django_tenants.utils import schema_context, schema_exists

from apps.accounts.models import User
from apps.tenants.models import Tenant
from tests.conftest import client_for


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
    assert member.get("/").status_code == 200


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
