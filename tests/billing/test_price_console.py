"""The operator console's price list: operators see every version and set new ones through
price_set; every bad input is a form error that writes nothing; nobody else reaches the page,
and a workspace host does not serve it."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.billing.models import Price
from tests.conftest import audit_events, client_for

GOOD = {
    "provider": "openai",
    "model": "gpt-x",
    "input_per_mtok": "2",
    "output_per_mtok": "8",
    "cached_per_mtok": "0.5",
    "effective_from": "",
}


def price_create(*, model: str = "gpt-x", days: float = 0, **amounts) -> Price:
    values = {"input_per_mtok": Decimal("1"), "output_per_mtok": Decimal("4"), "cached_per_mtok": Decimal("0.1")}
    return Price.objects.create(
        provider="openai", model=model, effective_from=timezone.now() + timedelta(days=days), created_by="ops@x.test",
        **{**values, **amounts},
    )  # fmt: skip


def test_it_lists_every_version_and_marks_the_current_one(operator_client):
    old = price_create(days=-30)
    current = price_create(days=-1, input_per_mtok=Decimal("2.5"))
    later = price_create(days=7)
    other = price_create(model="gpt-y", days=-2)
    response = operator_client.get("/prices/")
    assert response.status_code == 200
    rows = {p.pk: (p.is_current, p.is_scheduled) for p in response.context["prices"]}
    assert rows == {
        later.pk: (False, True),
        current.pk: (True, False),
        old.pk: (False, False),
        other.pk: (True, False),
    }
    assert [p.pk for p in response.context["prices"]] == [later.pk, current.pk, old.pk, other.pk]
    html = response.content.decode()
    assert f'data-price="{current.pk}" class="selected" data-current' in html
    assert f'data-price="{old.pk}">' in html
    assert "2.500000" in html and "ops@x.test" in html


def test_it_sets_a_price_from_now_and_audits_it(operator_client):
    before = timezone.now()
    response = operator_client.post("/prices/new/", GOOD)
    assert response.status_code == 302 and response["Location"] == "/prices/"
    price = Price.objects.get()
    assert (price.provider, price.model, price.created_by) == ("openai", "gpt-x", "operator@platform.test")
    assert (price.input_per_mtok, price.output_per_mtok, price.cached_per_mtok) == (
        Decimal("2"), Decimal("8"), Decimal("0.5"),
    )  # fmt: skip
    assert before <= price.effective_from <= timezone.now()
    [event] = audit_events("public", action="price.set", data={"model": "gpt-x"})
    assert event.data["input_per_mtok"] == "2.000000" and event.data["cached_per_mtok"] == "0.500000"
    operator = User.objects.get(email="operator@platform.test")
    assert event.actor_id == f"operator:{operator.pk}"
    page = operator_client.get("/prices/")
    assert [p.is_current for p in page.context["prices"]] == [True]


def test_it_sets_a_price_from_a_later_moment(operator_client):
    when = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    response = operator_client.post("/prices/new/", {**GOOD, "effective_from": when.strftime("%Y-%m-%dT%H:%M:%S")})
    assert response.status_code == 302
    assert Price.objects.get().effective_from == when
    assert [p.is_scheduled for p in operator_client.get("/prices/").context["prices"]] == [True]


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"input_per_mtok": "-1"}, "input_per_mtok", "price_invalid"),
        ({"output_per_mtok": "1e9"}, "output_per_mtok", "price_invalid"),
        ({"output_per_mtok": "10000.01"}, "output_per_mtok", "price_invalid"),
        ({"cached_per_mtok": "NaN"}, "cached_per_mtok", "price_invalid"),
        ({"input_per_mtok": "Infinity"}, "input_per_mtok", "price_invalid"),
        ({"input_per_mtok": "sNaN"}, "input_per_mtok", "price_invalid"),
        ({"input_per_mtok": "cheap"}, "input_per_mtok", "price_invalid"),
        ({"cached_per_mtok": ""}, "cached_per_mtok", "price_invalid"),
        ({"provider": ""}, "provider", "name_invalid"),
        ({"model": "has space"}, "model", "name_invalid"),
        ({"model": "m" * 201}, "model", "name_invalid"),
        ({"provider": "p" * 41}, "provider", "name_invalid"),
        ({"effective_from": "2001-01-01T00:00:00"}, "effective_from", "price_in_past"),
        ({"effective_from": "tomorrow"}, "effective_from", "invalid"),
        ({"effective_from": "99999-01-01T00:00:00"}, "effective_from", "invalid"),
        ({"effective_from": "9999-12-31T23:59:00-05:00"}, "effective_from", "invalid"),
    ],
)
def test_a_bad_price_is_a_form_error_and_writes_nothing(operator_client, fields, field, code):
    events = len(audit_events("public"))
    response = operator_client.post("/prices/new/", {**GOOD, **fields})
    assert response.status_code == 400
    assert code in [e.code for e in response.context["form"].errors.as_data()[field]]
    assert not Price.objects.exists()
    assert len(audit_events("public")) == events


def test_a_second_price_at_the_same_moment_is_refused(operator_client):
    when = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    existing = price_create(days=0)
    Price.objects.filter(pk=existing.pk).update(effective_from=when)
    response = operator_client.post("/prices/new/", {**GOOD, "effective_from": when.isoformat()})
    assert response.status_code == 400
    assert response.context["form"].errors.as_data()["effective_from"][0].code == "price_exists"
    assert list(Price.objects.values_list("pk", flat=True)) == [existing.pk]
    assert b"A price already starts at that moment." in response.content


def test_it_refuses_a_post_without_the_csrf_token(db):
    client = Client(HTTP_HOST="localhost", enforce_csrf_checks=True)
    with schema_context("public"):
        client.force_login(User.objects.get(email="operator@platform.test"))
    assert client.post("/prices/new/", GOOD).status_code == 403
    assert not Price.objects.exists()


def test_non_operators_are_refused(db):
    with schema_context("public"):
        User.objects.create_user("notstaff@platform.test", "x-long-password-1", is_staff=False)
    client = client_for(None, "notstaff@platform.test")
    assert client.get("/prices/").status_code == 403
    assert client.post("/prices/new/", GOOD).status_code == 403
    anonymous = client_for(None)
    assert anonymous.get("/prices/").status_code == 302
    assert anonymous.post("/prices/new/", GOOD).status_code == 302
    assert not Price.objects.exists()
    assert not audit_events("public", action="price.set")


def test_the_page_is_not_served_on_a_workspace_host(acme):
    owner = client_for(acme, "owner@acme.test")
    assert owner.get("/prices/").status_code == 404
    assert owner.post("/prices/new/", GOOD).status_code == 404
    assert not Price.objects.exists()
