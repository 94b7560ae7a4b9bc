import pytest
from django.urls import URLPattern, get_resolver
from django_tenants.utils import schema_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.accounts.models import User
from tests.api.conftest import api, issue
from tests.conftest import client_for, tenant_user


def _emails(response) -> list[str]:
    return [m["email"] for m in response.json()["members"]]


def test_list_filters_orders_and_pages(acme_admin):
    response = acme_admin.get("/api/v1/members", {"filter": 'role = (admin OR viewer) OR email = "owner*"'})
    assert response.status_code == 200
    assert _emails(response) == ["admin@acme.test", "owner@acme.test", "viewer@acme.test"]
    first = acme_admin.get("/api/v1/members", {"order_by": "email desc", "page_size": 2})
    assert _emails(first) == ["viewer@acme.test", "owner@acme.test"]
    token = first.json()["next_page_token"]
    second = acme_admin.get("/api/v1/members", {"order_by": "email desc", "page_size": 2, "page_token": token})
    assert _emails(second) == ["operator@acme.test", "developer@acme.test"]
    third = acme_admin.get(
        "/api/v1/members", {"order_by": "email desc", "page_size": 2, "page_token": second.json()["next_page_token"]}
    )
    assert _emails(third) == ["admin@acme.test"] and third.json()["next_page_token"] == ""


@pytest.mark.parametrize(
    ("params", "code", "position"),
    [
        ({"filter": "role = emperor"}, "invalid_value", 7),
        ({"filter": "password = x"}, "unknown_field", 0),
        ({"filter": "email = "}, "syntax_error", 8),
        ({"order_by": "password"}, "unknown_order_field", 0),
        ({"page_size": "-4"}, "invalid_page_size", None),
        ({"page_token": "forged"}, "invalid_page_token", None),
    ],
)
def test_bad_list_parameters_are_400_with_code_and_position(acme_admin, params, code, position):
    response = acme_admin.get("/api/v1/members", params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error.get("position")) == (code, position)


def test_a_page_token_from_another_query_is_refused(acme_admin):
    token = acme_admin.get("/api/v1/members", {"page_size": 1}).json()["next_page_token"]
    response = acme_admin.get("/api/v1/members", {"page_size": 1, "page_token": token, "filter": "role = admin"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "page_token_mismatch"


def test_add_change_and_remove_a_member(acme_admin, acme):
    created = acme_admin.post(
        "/api/v1/members", {"email": "new@acme.test", "role": "viewer"}, content_type="application/json"
    )
    assert created.status_code == 201
    member_id = created.json()["member"]["id"]
    assert created.json()["invite_url"].startswith("http://acme.localhost/invite/")
    patched = acme_admin.patch(f"/api/v1/members/{member_id}", {"role": "operator"}, content_type="application/json")
    assert patched.json()["role"] == "operator"
    assert acme_admin.delete(f"/api/v1/members/{member_id}").status_code == 204
    with schema_context("acme"):
        assert not User.objects.filter(email="new@acme.test").exists()


def test_service_rules_hold_over_the_api(acme_admin, acme):
    owner = tenant_user(acme, "owner@acme.test")
    response = acme_admin.patch(f"/api/v1/members/{owner.pk}", {"role": "viewer"}, content_type="application/json")
    assert response.status_code == 403  # an admin-role token cannot touch owners
    duplicate = acme_admin.post(
        "/api/v1/members", {"email": "viewer@acme.test", "role": "viewer"}, content_type="application/json"
    )
    assert duplicate.status_code == 400
    assert duplicate.json()["error"]["details"]["email"][0]["code"] == "member_exists"


def _v1_urls() -> list[tuple[str, str]]:
    """Every /api/v1/ route with its methods, so new endpoints join the isolation tests."""
    resolver = get_resolver("foundry.urls_api")
    out = []
    for pattern in resolver.url_patterns:
        if str(pattern.pattern) != "v1/":
            continue
        for p in pattern.url_patterns:
            assert isinstance(p, URLPattern)
            view = getattr(p.callback, "view_class", None)
            if view is None:  # a plain Django view: the public JSON Schemas, which need no token
                assert str(p.pattern).startswith("schemas/"), p
                continue
            for method in view.access:
                out.append((method, "/api/v1/" + str(p.pattern)))
    return out


V1 = _v1_urls()


@pytest.mark.parametrize(("method", "route"), V1, ids=[f"{m} {r}" for m, r in V1])
def test_another_tenants_token_is_refused_on_every_endpoint(acme, globex, method, route):
    path = route.replace("<int:member_id>", "1").replace("<int:token_id>", "1")
    path = path.replace("<slug:name>", "finance").replace("<int:number>", "1")
    path = path.replace("<uuid:export_id>", "00000000-0000-4000-8000-000000000000")
    response = api(acme, issue(globex)).generic(method, path, "{}", content_type="application/json")
    assert response.status_code == 401, (method, path)


@pytest.mark.parametrize(("method", "route"), [v for v in V1 if "<int:" in v[1]], ids=lambda v: str(v))
def test_another_tenants_object_ids_are_404_on_every_endpoint(acme, globex, method, route):
    with schema_context("globex"):
        from apps.tokens.models import ApiToken

        foreign_ids = {"member_id": User.objects.get(email="owner@globex.test").pk + 1000}
        issue(globex, name="foreign")
        foreign_ids["token_id"] = ApiToken.objects.get(name="foreign").pk + 1000
    path = route.replace("<int:member_id>", str(foreign_ids["member_id"])).replace(
        "<int:token_id>", str(foreign_ids["token_id"])
    )
    path = path.replace("<slug:name>", "finance").replace("<int:number>", "1")
    response = api(acme, issue(acme, role="owner")).generic(
        method, path, '{"role": "viewer"}', content_type="application/json"
    )
    assert response.status_code == 404, (method, path)


def test_the_api_does_not_exist_on_the_operator_host(db):
    from django.test import Client

    response = Client(HTTP_HOST="localhost").get("/api/v1/members")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    params=st.fixed_dictionaries(
        {},
        optional={
            "filter": st.text(max_size=40),
            "order_by": st.text(max_size=20),
            "page_size": st.text(max_size=6),
            "page_token": st.text(max_size=30),
        },
    )
)
def test_no_list_query_gets_a_5xx(acme_admin, params):
    response = acme_admin.get("/api/v1/members", params)
    assert response.status_code in (200, 400), (params, response.content)


def test_a_page_token_of_another_tenant_is_refused(acme_admin, globex_admin, globex):
    from apps.accounts.models import User as Member

    with schema_context("globex"):
        Member.objects.create_user("second@globex.test", None)
    token = globex_admin.get("/api/v1/members", {"page_size": 1}).json()["next_page_token"]
    assert token
    response = acme_admin.get("/api/v1/members", {"page_size": 1, "page_token": token})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "page_token_mismatch"


def test_the_workspace_endpoint_shows_what_the_dashboard_shows(acme):
    response = api(acme, issue(acme, role="viewer", scopes=["read"])).get("/api/v1/workspace")
    assert response.json() == {
        "slug": "acme",
        "name": "Acme Corporation",
        "plan": "enterprise",
        "status": "active",
        "member_count": 5,
        "trace_content": False,
    }


def test_the_workspace_counts_only_its_own_active_members(acme, globex):
    with schema_context("globex"):
        for n in range(3):
            User.objects.create_user(f"extra{n}@globex.test", None)
    with schema_context("acme"):
        leaving = User.objects.exclude(email="owner@acme.test").order_by("pk").values_list("pk", flat=True)[:2]
        User.objects.filter(pk__in=list(leaving)).update(is_active=False)
    acme_count = api(acme, issue(acme, scopes=["read"])).get("/api/v1/workspace").json()["member_count"]
    globex_count = api(globex, issue(globex, scopes=["read"])).get("/api/v1/workspace").json()["member_count"]
    with schema_context("acme"):
        assert acme_count == User.objects.filter(is_active=True).count()
    with schema_context("globex"):
        assert globex_count == User.objects.filter(is_active=True).count()
    assert (acme_count, globex_count) == (3, 4)  # acme: 5 less 2 gone; globex: its owner and 3 new


def test_a_pending_member_gets_a_new_invitation_link_and_a_joined_one_does_not(acme_admin, acme):
    created = acme_admin.post(
        "/api/v1/members", {"email": "late@acme.test", "role": "viewer"}, content_type="application/json"
    )
    member_id = created.json()["member"]["id"]
    again = acme_admin.post(f"/api/v1/members/{member_id}/invite", content_type="application/json")
    assert again.status_code == 200 and again.json()["invite_url"].startswith("http://acme.localhost/invite/")
    joined = tenant_user(acme, "developer@acme.test")
    refused = acme_admin.post(f"/api/v1/members/{joined.pk}/invite", content_type="application/json")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invite_not_pending"


def test_only_owners_get_an_invited_owners_new_link(acme):
    """The link sets the invitee's password: an admin holding an invited owner's link would sign
    in as that owner. Refused for an admin signed in and for an admin token; an admin still gets
    an invited admin's link, and an owner an invited owner's."""
    from apps.accounts.services import member_add

    with schema_context("acme"):
        owner = tenant_user(acme, "owner@acme.test")
        invited_owner = member_add(actor=owner, email="new-owner@acme.test", role="owner").pk
        invited_admin = member_add(actor=owner, email="new-admin@acme.test", role="admin").pk
    for admin in (client_for(acme, "admin@acme.test"), api(acme, issue(acme, role="admin", scopes=["admin"]))):
        refused = admin.post(f"/api/v1/members/{invited_owner}/invite", content_type="application/json")
        assert refused.status_code == 403 and "invite_url" not in refused.json()
        assert admin.post(f"/api/v1/members/{invited_admin}/invite", content_type="application/json").status_code == 200
    owner_token = api(acme, issue(acme, role="owner", scopes=["admin"]))
    assert (
        owner_token.post(f"/api/v1/members/{invited_owner}/invite", content_type="application/json").status_code == 200
    )
