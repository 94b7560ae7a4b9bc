import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django_tenants.utils import schema_context, schema_exists

from apps.accounts.models import User
from apps.tenants import services
from apps.tenants.models import Domain, Tenant
from apps.tenants.services import tenant_provision
from tests.conftest import audit_events


def _counts() -> tuple[int, int, int]:
    connection.set_schema_to_public()
    return Tenant.objects.count(), Domain.objects.count(), len(audit_events("public"))


def test_it_provisions_schema_domain_owner_and_audit_events(db):
    result = tenant_provision(
        slug="initech", name="Initech", owner_email="Bill@Initech.test", plan="team", actor="test"
    )
    tenant = Tenant.objects.get(slug="initech")
    assert (tenant.name, tenant.plan, tenant.status, tenant.schema_name) == (
        "Initech",
        "team",
        "active",
        "initech",
    )
    assert list(tenant.domains.values_list("domain", "is_primary")) == [("initech.localhost", True)]
    assert schema_exists("initech")
    with schema_context("initech"):
        owner = User.objects.get()
        assert (owner.email, owner.role, owner.has_usable_password()) == ("bill@initech.test", "owner", False)
    assert [e.action for e in audit_events("initech")] == ["tenant.provisioned"]
    assert audit_events("initech")[0].data == {"plan": "team", "owner": f"user:{owner.pk}"}
    assert result.owner.pk == owner.pk
    (event,) = audit_events("public", action="tenant.provisioned", target_id=str(tenant.pk))
    assert event.data == {"plan": "team", "domain": "initech.localhost"}
    assert (event.actor_type, event.actor_id, event.target_type) == ("service", "service:test", "tenants.tenant")


def test_hyphenated_slugs_get_an_underscored_schema(db):
    tenant_provision(slug="big-co", name="Big Co", owner_email="o@big.test")
    assert Tenant.objects.get(slug="big-co").schema_name == "big_co"
    assert schema_exists("big_co")


@pytest.mark.parametrize(
    ("slug", "code"),
    [
        ("", "slug_required"),
        ("Acme2", "slug_invalid"),
        ("2acme", "slug_invalid"),
        ("acme_corp", "slug_invalid"),
        ("acme-", "slug_invalid"),
        ("acme corp", "slug_invalid"),
        ("acmé", "slug_invalid"),
        ("a" * 64, "slug_too_long"),
        ("public", "slug_reserved"),
        ("www", "slug_reserved"),
        ("api", "slug_reserved"),
        ("admin", "slug_reserved"),
        ("pg-catalog", "slug_reserved"),
        ("acme", "slug_taken"),
    ],
)
def test_bad_slugs_are_refused_with_a_code_and_create_nothing(acme, slug, code):
    before = _counts()
    with pytest.raises(ValidationError) as exc:
        tenant_provision(slug=slug, name="X", owner_email="o@x.test")
    assert [e.code for e in exc.value.error_dict["slug"]] == [code]
    assert _counts() == before


def test_a_slug_of_63_characters_is_accepted(db):
    slug = "a" * 63
    tenant_provision(slug=slug, name="Long", owner_email="o@long.test")
    assert schema_exists(slug)


def test_missing_and_invalid_fields_are_all_reported_together(db):
    before = _counts()
    with pytest.raises(ValidationError) as exc:
        tenant_provision(slug="newco", name=" ", owner_email="not-an-email", plan="gold", owner_password="123")
    codes = {field: [e.code for e in errors] for field, errors in exc.value.error_dict.items()}
    assert codes == {
        "name": ["name_required"],
        "plan": ["plan_invalid"],
        "owner_email": ["email_invalid"],
        "owner_password": ["password_weak"],
    }
    assert _counts() == before
    assert not schema_exists("newco")


def test_a_taken_domain_is_refused(acme):
    Domain.objects.create(domain="newco.localhost", tenant=acme, is_primary=False)
    with pytest.raises(ValidationError) as exc:
        tenant_provision(slug="newco", name="NewCo", owner_email="o@newco.test")
    assert [e.code for e in exc.value.error_dict["slug"]] == ["domain_taken"]


@pytest.mark.parametrize("method", ["clone", "migrate"])
def test_a_failure_midway_leaves_no_schema_and_no_rows(db, monkeypatch, method):
    """Fault injection: the last step (the platform audit event) fails after the schema,
    domain and owner exist. Everything must roll back, the schema included."""
    before = _counts()
    calls = []
    real_audit = services.audit_record

    def failing_audit(**kwargs):
        calls.append(connection.schema_name)
        if connection.schema_name == "public":
            raise RuntimeError("audit store unavailable")
        return real_audit(**kwargs)

    monkeypatch.setattr(services, "audit_record", failing_audit)
    with pytest.raises(RuntimeError, match="audit store unavailable"):
        tenant_provision(slug="halfway", name="Halfway", owner_email="o@halfway.test", method=method)
    assert calls == ["halfway", "public"]  # it really failed after the schema was populated
    assert _counts() == before
    assert not schema_exists("halfway")


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"owner_email": "a" * 250 + "@x.test"}, "owner_email", "email_invalid"),
        ({"name": "Evil\x00Corp"}, "name", "name_invalid"),
        ({"name": "Evil\x7fCorp"}, "name", "name_invalid"),  # DEL
        ({"name": "Evil\x85Corp"}, "name", "name_invalid"),  # a C1 control (NEL)
        ({"name": "Evil\u202eproC"}, "name", "name_invalid"),  # right-to-left override
        ({"name": "Evil\u2028Corp"}, "name", "name_invalid"),  # line separator
        ({"name": "x" * 201}, "name", "name_too_long"),
    ],
)
def test_oversized_and_binary_input_is_refused_not_crashed(db, fields, field, code):
    before = _counts()
    kwargs = {"slug": "edgy", "name": "Edgy", "owner_email": "o@edgy.test", **fields}
    with pytest.raises(ValidationError) as exc:
        tenant_provision(**kwargs)
    assert [e.code for e in exc.value.error_dict[field]] == [code]
    assert _counts() == before


def test_a_name_of_200_characters_with_spaces_around_it_is_taken_stripped(db):
    """A name is stored stripped, so its length is judged stripped: 200 characters typed with a
    space after them (as a paste brings) name the workspace."""
    tenant = tenant_provision(slug="padded", name=" " + "x" * 200 + " ", owner_email="o@padded.test").tenant
    assert tenant.name == "x" * 200
