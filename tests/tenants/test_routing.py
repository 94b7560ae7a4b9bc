import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.audit.models import PLATFORM, AuditEvent
from apps.audit.scope import rls_scope
from apps.tenants import routing
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_resume, tenant_suspend
from tests.conftest import client_for


def test_it_serves_each_tenant_on_its_own_host(acme, globex):
    for tenant in (acme, globex):
        response = client_for(tenant, f"owner@{tenant.slug}.test").get("/")
        assert response.status_code == 200
        assert response.context["tenant"].slug == tenant.slug
        assert response.context["member_count"] == (5 if tenant.slug == "acme" else 1)


def test_it_serves_the_operator_console_on_the_base_domain(operator_client):
    response = operator_client.get("/")
    assert response.status_code == 200
    for slug in ("acme", "globex"):  # found by name: other tests' workspaces may fill page 1
        assert slug in {t.slug for t in operator_client.get("/", {"q": slug}).context["tenants"]}


@pytest.mark.parametrize(
    "host",
    ["nope.localhost", "acme.localhost.evil.com", "evil.com", "www.localhost", "acme", "127.0.0.1", ""],
)
def test_it_answers_404_for_unknown_hosts_and_never_falls_back_to_public(db, host):
    response = Client(HTTP_HOST=host).get("/login/")
    assert response.status_code == 404
    assert b"unknown_host" in response.content
    assert connection.schema_name == "public"


def test_unknown_host_answers_json_to_api_clients(db):
    response = Client(HTTP_HOST="nope.localhost").get("/api/v1/anything")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "unknown_host", "message": "No workspace is served at this address."}}


def test_host_matching_ignores_case_port_and_trailing_dot(acme):
    client = client_for(acme, "owner@acme.test")
    for host in ("ACME.localhost", "acme.localhost:8000", "acme.localhost."):
        assert client.get("/", HTTP_HOST=host).status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/", "/login/", "/members/", "/members/add/", "/logout/", "/api/v1/agents", "/static/css/console.css"],
)
def test_a_suspended_tenant_is_blocked_on_every_path(acme, django_capture_on_commit_callbacks, path):
    client = client_for(acme, "owner@acme.test")
    with django_capture_on_commit_callbacks(execute=True):
        tenant_suspend(tenant=acme)
    for method in ("get", "post"):
        response = getattr(client, method)(path)
        assert response.status_code == 403, (method, path)
        assert b"tenant_suspended" in response.content


def test_routing_refusals_carry_the_security_headers(acme, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        tenant_suspend(tenant=acme)
    for host, status in (("acme.localhost", 403), ("nobody.localhost", 404)):
        response = Client(HTTP_HOST=host).get("/")
        assert response.status_code == status
        assert response["Content-Type"].startswith("text/html")
        assert (response.get("X-Frame-Options"), response.get("X-Content-Type-Options")) == ("DENY", "nosniff"), host
        assert response.get("Referrer-Policy") == "same-origin", host


def test_suspension_does_not_touch_other_tenants(acme, globex, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        tenant_suspend(tenant=acme)
    assert client_for(globex, "owner@globex.test").get("/").status_code == 200


def test_a_cached_route_costs_no_query_and_an_unchanged_schema_no_set_search_path(acme):
    client = client_for(acme, "owner@acme.test")
    client.get("/")  # warm the route cache and the connection's search_path
    with CaptureQueriesContext(connection) as queries:
        client.get("/healthz")
    assert len(queries) == 0
    with CaptureQueriesContext(connection) as queries:
        client.get("/")
    sql = [q["sql"] for q in queries]
    assert not any("tenants_domain" in s for s in sql), sql
    assert not any(s.startswith("SET search_path") for s in sql), sql


def test_a_route_read_before_a_suspension_is_not_cached_after_it(acme, monkeypatch):
    """A request reads "active", the suspension commits and invalidates, then the request writes
    what it read: without the generation check every process served the suspended workspace for
    the Redis entry's lifetime."""
    host, query = "acme.localhost", routing._query

    def query_then_a_suspension_commits(name):
        route = query(name)
        if name == host and route is not None and route.status == "active":
            Tenant.objects.filter(pk=acme.pk).update(status=Tenant.Status.SUSPENDED)
            routing.route_invalidate(name)  # what the suspension's on_commit does
        return route

    monkeypatch.setattr(routing, "_query", query_then_a_suspension_commits)
    assert Client(HTTP_HOST=host).get("/login/").status_code == 200  # it started before
    monkeypatch.setattr(routing, "_query", query)
    routing.route_cache_clear_local()  # another process, or this one after its 2 s
    assert routing.route_for_host(host).status == Tenant.Status.SUSPENDED
    assert Client(HTTP_HOST=host).get("/login/").status_code == 403


@pytest.mark.parametrize("host", ["evil.com", "acme.localhost..", "127.0.0.1"])
def test_a_foreign_host_with_the_https_redirect_on_is_a_400_without_a_traceback_logged(db, settings, host, caplog):
    """Django's HTTPS redirect (FOUNDRY_SSL_REDIRECT) runs before the host router and refuses a
    host outside ALLOWED_HOSTS itself (docs/tenancy.md), without an error and its traceback in
    the log for each scanner's probe (the access log has the 400)."""
    settings.SECURE_SSL_REDIRECT = True
    with caplog.at_level("INFO"):
        response = Client(HTTP_HOST=host, raise_request_exception=False).get("/api/v1/workspace")
    assert response.status_code == 400
    assert [(r.name, r.levelname) for r in caplog.records if r.exc_info or r.levelno >= 40] == []


def test_a_suspension_ends_the_workspaces_sessions_so_resuming_signs_nobody_back_in(
    acme, globex, django_capture_on_commit_callbacks
):
    """Suspended (an incident, an unpaid bill), every session of the workspace is deleted with the
    change of status, and the event says how many: once resumed, a cookie of before opens nothing,
    and each member signs in again, under the sign-in rules of then. Other workspaces keep theirs."""
    member, other = client_for(acme, "owner@acme.test"), client_for(globex, "owner@globex.test")
    with django_capture_on_commit_callbacks(execute=True):
        tenant_suspend(tenant=acme)
    with django_capture_on_commit_callbacks(execute=True):
        tenant_resume(tenant=acme)
    response = member.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert other.get("/").status_code == 200
    with rls_scope(PLATFORM):
        event = AuditEvent.objects.filter(tenant_id=PLATFORM, action="tenant.suspended", target_id=str(acme.pk)).latest(
            "seq"
        )
    assert event.data == {"sessions_ended": 1}
