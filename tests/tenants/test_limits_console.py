"""The operator console's limits: a tenant's limits page sets and clears overrides through
tenant_limits_set, the plans page changes a plan through plan_update. Every bad input is a form
error (or a 404) that changes nothing; nobody but operators reaches the pages, and a workspace
host does not serve them."""

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.tenants.limits import limits_for
from apps.tenants.models import Plan, Tenant
from apps.tenants.services import plan_update
from tests.conftest import audit_events, client_for

NO_OVERRIDES = {"requests_per_second": "", "burst": "", "concurrent_runs": "", "monthly_tokens": ""}
TEAM = {"plan": "team", "requests_per_second": "30", "burst": "150", "concurrent_runs": "12", "monthly_tokens": ""}
LIMIT_FIELDS = ("requests_per_second", "burst", "concurrent_runs", "monthly_tokens")


@pytest.fixture(autouse=True)
def _unscaled(settings):
    settings.FOUNDRY_RATELIMIT_PLAN_SCALE = 1.0


def overrides_of(slug: str) -> tuple:
    tenant = Tenant.objects.get(slug=slug)
    return tuple(getattr(tenant, f"{name}_override") for name in LIMIT_FIELDS)


def plan_values(name: str) -> tuple:
    plan = Plan.objects.get(pk=name)
    return tuple(getattr(plan, field) for field in LIMIT_FIELDS)


def limits_tuple(tenant: Tenant) -> tuple:
    limits = limits_for(tenant)
    return tuple(getattr(limits, name) for name in LIMIT_FIELDS)


# --- a tenant's limits ----------------------------------------------------------------------------


def test_it_shows_the_plan_and_where_each_limit_comes_from(operator_client, globex):
    Tenant.objects.filter(pk=globex.pk).update(burst_override=7)
    response = operator_client.get("/tenants/globex/limits/")
    assert response.status_code == 200
    rows = {row["name"]: (row["value"], row["source"], row["plan_value"]) for row in response.context["rows"]}
    assert rows == {
        "requests_per_second": ("20", "plan", "20"),
        "burst": ("7", "override", "100"),
        "concurrent_runs": ("10", "plan", "10"),
        "monthly_tokens": ("20,000,000", "plan", "20,000,000"),
    }
    html = response.content.decode()
    assert "<strong>Team</strong> plan" in html
    assert 'name="burst" value="7"' in html


def test_the_tenant_list_links_each_tenants_limits(operator_client):
    for slug in ("acme", "globex"):  # found by name: other tests' workspaces may fill page 1
        html = operator_client.get("/", {"q": slug}).content.decode()
        assert f'href="/tenants/{slug}/limits/"' in html
    assert 'href="/plans/"' in html  # the operator nav


def test_it_sets_and_clears_overrides_and_audits_both(operator_client, globex):
    response = operator_client.post(
        "/tenants/globex/limits/", {**NO_OVERRIDES, "requests_per_second": "3", "monthly_tokens": " 5000 "}
    )
    assert response.status_code == 302 and response["Location"] == "/tenants/globex/limits/"
    assert overrides_of("globex") == (3, None, None, 5000)
    assert limits_tuple(globex) == (3, 100, 10, 5000)
    assert limits_for(globex).overridden == {"requests_per_second", "monthly_tokens"}
    (event,) = audit_events("public", action="tenant.limits.set")
    operator = User.objects.get(email="operator@platform.test")
    assert event.actor_id == f"operator:{operator.pk}"
    assert event.data["before"]["requests_per_second"] is None
    assert event.data["after"] == {
        "requests_per_second": 3,
        "burst": None,
        "concurrent_runs": None,
        "monthly_tokens": 5000,
    }
    page = operator_client.get("/tenants/globex/limits/")
    assert {row["name"]: row["source"] for row in page.context["rows"]}["requests_per_second"] == "override"

    # Cleared from the page as rendered: each field carries the value it was shown with (its
    # hidden `initial-` input), and a save changes only what changed.
    shown = {"initial-requests_per_second": "3", "initial-monthly_tokens": "5000"}
    assert operator_client.post("/tenants/globex/limits/", {**NO_OVERRIDES, **shown}).status_code == 302
    assert overrides_of("globex") == (None, None, None, None)
    assert limits_tuple(globex) == (20, 100, 10, 20_000_000)
    assert limits_for(globex).overridden == frozenset()
    assert len(audit_events("public", action="tenant.limits.set")) == 2


def test_the_largest_allowed_overrides_are_accepted(operator_client, globex):
    maxima = {"requests_per_second": "100000", "burst": "1000000", "concurrent_runs": "10000"}
    response = operator_client.post("/tenants/globex/limits/", {**maxima, "monthly_tokens": "10000000000000"})
    assert response.status_code == 302
    assert overrides_of("globex") == (100_000, 1_000_000, 10_000, 10**13)


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("requests_per_second", "-5", "limit_invalid"),
        ("requests_per_second", "0", "limit_invalid"),
        ("burst", "1000001", "limit_invalid"),
        ("concurrent_runs", "999999999", "limit_invalid"),
        ("monthly_tokens", "10000000000001", "limit_invalid"),
        ("monthly_tokens", "9" * 40, "limit_invalid"),
        ("monthly_tokens", "9" * 41, "max_length"),
        ("burst", "lots", "invalid"),
        ("burst", "NaN", "invalid"),
        ("burst", "Infinity", "invalid"),
        ("burst", "1e3", "invalid"),
        ("burst", "2.5", "invalid"),
        ("burst", "1_000", "invalid"),
        ("burst", "\uff11\uff12", "invalid"),  # fullwidth digits, which int() would take
        ("concurrent_runs", "true", "invalid"),
        ("concurrent_runs", "on", "invalid"),
        ("concurrent_runs", "False", "invalid"),
        ("requests_per_second", "5\x00", "null_characters_not_allowed"),
    ],
)
def test_a_bad_override_is_a_form_error_and_changes_nothing(operator_client, globex, field, value, code):
    response = operator_client.post("/tenants/globex/limits/", {**NO_OVERRIDES, "burst": "7", field: value})
    assert response.status_code == 400
    assert code in [e.code for e in response.context["form"].errors.as_data()[field]]
    assert overrides_of("globex") == (None, None, None, None)
    assert limits_tuple(globex) == (20, 100, 10, 20_000_000)
    assert audit_events("public", action="tenant.limits.set") == []


def test_every_bad_override_is_named_on_its_field(operator_client, globex):
    response = operator_client.post(
        "/tenants/globex/limits/", {**NO_OVERRIDES, "requests_per_second": "0", "burst": "-1"}
    )
    assert response.status_code == 400
    errors = response.context["form"].errors.as_data()
    assert set(errors) == {"requests_per_second", "burst"}
    assert errors["burst"][0].message == "burst must be a whole number from 1 to 1,000,000, not -1."
    assert b"burst must be a whole number from 1 to 1,000,000, not -1." in response.content
    assert overrides_of("globex") == (None, None, None, None)


def test_an_unknown_tenant_is_404(operator_client):
    assert operator_client.get("/tenants/nope/limits/").status_code == 404
    assert operator_client.post("/tenants/nope/limits/", {**NO_OVERRIDES, "burst": "5"}).status_code == 404
    assert operator_client.get("/tenants/public/limits/").status_code == 404  # the platform is no tenant
    assert operator_client.get("/tenants/bad%20slug/limits/").status_code == 404
    assert audit_events("public", action="tenant.limits.set") == []


# --- plans ----------------------------------------------------------------------------------------


def test_it_lists_the_plans(operator_client):
    response = operator_client.get("/plans/")
    assert response.status_code == 200
    rows = {row["plan"].pk: (row["values"], row["tenants"]) for row in response.context["rows"]}
    # Other tests leave committed tenants of their own (on the free plan): count what is there.
    on = {plan: Tenant.objects.filter(plan=plan).count() for plan in ("free", "team", "enterprise")}
    assert on["team"] >= 1 and on["enterprise"] >= 1
    assert rows == {
        "free": (["5", "20", "2", "1,000,000"], on["free"]),
        "team": (["20", "100", "10", "20,000,000"], on["team"]),
        "enterprise": (["100", "500", "50", "unlimited"], on["enterprise"]),
    }
    assert 'href="/plans/?plan=team"' in response.content.decode()


def test_edit_fills_the_form_with_the_plans_values(operator_client):
    form = operator_client.get("/plans/?plan=team").context["form"]
    assert form.initial == {
        "plan": "team",
        "requests_per_second": 20,
        "burst": 100,
        "concurrent_runs": 10,
        "monthly_tokens": 20_000_000,
    }
    assert operator_client.get("/plans/?plan=gold").context["form"].initial == {}
    assert operator_client.get("/plans/?plan=%00").status_code == 200


def test_it_updates_a_plan_and_its_tenants_limits(operator_client, globex, acme):
    Tenant.objects.filter(pk=globex.pk).update(concurrent_runs_override=3)
    assert limits_tuple(globex) == (20, 100, 3, 20_000_000)  # now cached in this process
    response = operator_client.post("/plans/", TEAM)
    assert response.status_code == 302 and response["Location"] == "/plans/"
    assert plan_values("team") == (30, 150, 12, None)
    assert limits_tuple(globex) == (30, 150, 3, None)  # the override still wins
    assert limits_tuple(acme) == (100, 500, 50, None)  # another plan's tenant: unchanged
    (event,) = audit_events("public", action="plan.update")
    operator = User.objects.get(email="operator@platform.test")
    assert event.actor_id == f"operator:{operator.pk}"
    assert (event.target_type, event.target_id) == ("tenants.plan", "team")
    assert event.data == {
        "plan": "team",
        "before": {"requests_per_second": 20, "burst": 100, "concurrent_runs": 10, "monthly_tokens": 20_000_000},
        "after": {"requests_per_second": 30, "burst": 150, "concurrent_runs": 12, "monthly_tokens": None},
    }


def test_a_plan_gets_a_monthly_cap_back(operator_client):
    response = operator_client.post("/plans/", {**TEAM, "plan": "enterprise", "monthly_tokens": "7000000"})
    assert response.status_code == 302
    assert plan_values("enterprise") == (30, 150, 12, 7_000_000)


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"plan": "gold"}, "plan", "plan_unknown"),
        ({"plan": ""}, "plan", "plan_unknown"),
        ({"plan": "Team"}, "plan", "plan_unknown"),
        ({"plan": "team\x00"}, "plan", "null_characters_not_allowed"),
        ({"requests_per_second": "-1"}, "requests_per_second", "limit_invalid"),
        ({"requests_per_second": "0"}, "requests_per_second", "limit_invalid"),
        ({"requests_per_second": ""}, "requests_per_second", "limit_invalid"),
        ({"requests_per_second": "100001"}, "requests_per_second", "limit_invalid"),
        ({"burst": "0"}, "burst", "limit_invalid"),
        ({"burst": ""}, "burst", "limit_invalid"),
        ({"burst": "99999999999999999999"}, "burst", "limit_invalid"),
        ({"concurrent_runs": "0"}, "concurrent_runs", "limit_invalid"),
        ({"concurrent_runs": "10001"}, "concurrent_runs", "limit_invalid"),
        ({"monthly_tokens": "0"}, "monthly_tokens", "limit_invalid"),
        ({"monthly_tokens": "-100"}, "monthly_tokens", "limit_invalid"),
        ({"monthly_tokens": "10000000000001"}, "monthly_tokens", "limit_invalid"),
        ({"monthly_tokens": "NaN"}, "monthly_tokens", "invalid"),
        ({"monthly_tokens": "unlimited"}, "monthly_tokens", "invalid"),
        ({"burst": "inf"}, "burst", "invalid"),
        ({"burst": "1e6"}, "burst", "invalid"),
        ({"concurrent_runs": "yes"}, "concurrent_runs", "invalid"),
        ({"concurrent_runs": "True"}, "concurrent_runs", "invalid"),
        ({"requests_per_second": "0x10"}, "requests_per_second", "invalid"),
        ({"requests_per_second": "1" * 41}, "requests_per_second", "max_length"),
    ],
)
def test_a_bad_plan_change_is_a_form_error_and_changes_nothing(operator_client, globex, fields, field, code):
    before = {name: plan_values(name) for name in ("free", "team", "enterprise")}
    response = operator_client.post("/plans/", {**TEAM, **fields})
    assert response.status_code == 400
    assert code in [e.code for e in response.context["form"].errors.as_data()[field]]
    assert {name: plan_values(name) for name in ("free", "team", "enterprise")} == before
    assert limits_tuple(globex) == (20, 100, 10, 20_000_000)
    assert audit_events("public", action="plan.update") == []


def test_plan_update_refuses_values_that_are_not_whole_numbers(db):
    operator = User.objects.get(email="operator@platform.test")
    values = {"requests_per_second": 1, "burst": 1, "concurrent_runs": 1, "monthly_tokens": None}
    for bad in (True, 2.0, "5", float("nan")):
        with pytest.raises(ValidationError) as excinfo:
            plan_update(actor=operator, plan="free", **{**values, "burst": bad})
        assert excinfo.value.error_dict["burst"][0].code == "limit_invalid"
    assert plan_values("free") == (5, 20, 2, 1_000_000)
    assert plan_update(actor=operator, plan=Plan.objects.get(pk="free"), **values).burst == 1


# --- who may --------------------------------------------------------------------------------------


def test_tenant_members_and_non_staff_are_refused_and_nothing_changes(acme):
    with schema_context("public"):
        User.objects.create_user("notstaff@platform.test", "x-long-password-1", is_staff=False)
    notstaff = client_for(None, "notstaff@platform.test")
    assert notstaff.get("/tenants/acme/limits/").status_code == 403
    assert notstaff.post("/tenants/acme/limits/", {**NO_OVERRIDES, "burst": "1"}).status_code == 403
    assert notstaff.get("/plans/").status_code == 403
    assert notstaff.post("/plans/", TEAM).status_code == 403
    anonymous = client_for(None)
    assert anonymous.get("/plans/").status_code == 302
    assert anonymous.post("/tenants/acme/limits/", {**NO_OVERRIDES, "burst": "1"}).status_code == 302
    # A workspace owner's session cookie, brought to the operator host: signed in nowhere there.
    owner = client_for(acme, "owner@acme.test")
    operator_host = Client(HTTP_HOST="localhost")
    operator_host.cookies = owner.cookies
    assert operator_host.get("/plans/").status_code == 302
    assert operator_host.post("/plans/", TEAM).status_code == 302
    assert operator_host.post("/tenants/acme/limits/", {**NO_OVERRIDES, "burst": "1"}).status_code == 302
    assert overrides_of("acme") == (None, None, None, None)
    assert plan_values("team") == (20, 100, 10, 20_000_000)
    assert audit_events("public", action="tenant.limits.set") == []
    assert audit_events("public", action="plan.update") == []


def test_the_pages_are_not_served_on_a_workspace_host(acme):
    owner = client_for(acme, "owner@acme.test")
    assert owner.get("/tenants/acme/limits/").status_code == 404
    assert owner.post("/tenants/acme/limits/", {**NO_OVERRIDES, "burst": "1"}).status_code == 404
    assert owner.get("/plans/").status_code == 404
    assert owner.post("/plans/", TEAM).status_code == 404
    assert overrides_of("acme") == (None, None, None, None)
    assert plan_values("team") == (20, 100, 10, 20_000_000)


def test_posts_without_the_csrf_token_are_refused(db):
    client = Client(HTTP_HOST="localhost", enforce_csrf_checks=True)
    with schema_context("public"):
        client.force_login(User.objects.get(email="operator@platform.test"))
    assert client.post("/tenants/globex/limits/", {**NO_OVERRIDES, "burst": "1"}).status_code == 403
    assert client.post("/plans/", TEAM).status_code == 403
    assert overrides_of("globex") == (None, None, None, None)
    assert plan_values("team") == (20, 100, 10, 20_000_000)
    # With the token from the page, the same post goes through.
    page = client.get("/plans/")
    token = page.context["csrf_token"]
    assert client.post("/plans/", {**TEAM, "csrfmiddlewaretoken": str(token)}).status_code == 302
    assert plan_values("team") == (30, 150, 12, None)


def test_a_plan_saved_again_as_it_stands_records_no_second_change(operator_client):
    """docs/limits.md: "Each change is an audit event `plan.update`": a double submit, or a
    reload of the answer, added a second one whose before equalled its after."""
    values = {"plan": "team", "requests_per_second": "11", "burst": "22", "concurrent_runs": "3", "monthly_tokens": ""}
    assert operator_client.post("/plans/", values).status_code == 302
    assert operator_client.post("/plans/", values).status_code == 302
    (event,) = audit_events("public", action="plan.update", target_id="team")
    assert event.data["after"]["burst"] == 22
