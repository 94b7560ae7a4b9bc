"""Shared fixtures: a test database with two tenants and a cast of named people.

acme has one member per role; globex has its own owner; the public schema has one platform
operator. They are created once per test session (committed), and every test runs inside a
transaction that is rolled back — schema DDL included — so tests may provision freely.
"""

from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.tenants.models import Tenant
from apps.tenants.routing import route_cache_clear
from apps.tenants.schemas import base_schema_prepare
from apps.tenants.services import tenant_provision

PASSWORD = "correct-horse-battery-staple"


@dataclass(frozen=True)
class Cast:
    acme: Tenant
    globex: Tenant


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """After the test database is migrated: the clone base schema, then acme and globex."""
    with django_db_blocker.unblock():
        base_schema_prepare()
        acme = tenant_provision(
            slug="acme",
            name="Acme Corporation",
            plan=Tenant.Plan.ENTERPRISE,
            owner_email="owner@acme.test",
            owner_password=PASSWORD,
        ).tenant
        tenant_provision(
            slug="globex",
            name="Globex",
            plan=Tenant.Plan.TEAM,
            owner_email="owner@globex.test",
            owner_password=PASSWORD,
        )
        with schema_context(acme.schema_name):
            for role in (Role.ADMIN, Role.DEVELOPER, Role.OPERATOR, Role.VIEWER):
                User.objects.create_user(f"{role}@acme.test", PASSWORD, role=role)
        with schema_context("public"):
            User.objects.create_user("operator@platform.test", PASSWORD, is_staff=True)
        connection.set_schema_to_public()


@pytest.fixture(autouse=True)
def _fresh_request_state():
    """Each test starts on the public schema with empty caches."""
    connection.set_schema_to_public()
    route_cache_clear()
    cache.clear()
    yield
    connection.set_schema_to_public()


@pytest.fixture
def acme(db) -> Tenant:
    return Tenant.objects.get(slug="acme")


@pytest.fixture
def globex(db) -> Tenant:
    return Tenant.objects.get(slug="globex")


def tenant_user(tenant: Tenant, email: str) -> User:
    with schema_context(tenant.schema_name):
        return User.objects.get(email=email)


def host_of(tenant: Tenant | None) -> str:
    return f"{tenant.slug}.localhost" if tenant else "localhost"


def client_for(tenant: Tenant | None, email: str | None = None) -> Client:
    """A test client on the tenant's host (None: the operator host), signed in as `email`."""
    client = Client(HTTP_HOST=host_of(tenant))
    if email:
        schema = tenant.schema_name if tenant else "public"
        with schema_context(schema):
            client.force_login(User.objects.get(email=email))
    return client


@pytest.fixture
def owner_client(acme) -> Client:
    return client_for(acme, "owner@acme.test")


@pytest.fixture
def operator_client(db) -> Client:
    return client_for(None, "operator@platform.test")
