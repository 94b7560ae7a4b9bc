import pytest
from django.test import Client
from django_tenants.utils import schema_context

from apps.tokens.services import token_issue


def issue(tenant, *, role="admin", scopes=("read", "write", "run", "admin"), name="test", expires_in=None) -> str:
    with schema_context(tenant.schema_name):
        return token_issue(actor="test", name=name, role=role, scopes=list(scopes), expires_in=expires_in).plaintext


def api(tenant, token: str | None = None) -> Client:
    headers = {"HTTP_HOST": f"{tenant.slug}.localhost"}
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return Client(**headers)


@pytest.fixture
def acme_admin(acme) -> Client:
    return api(acme, issue(acme))


@pytest.fixture
def globex_admin(globex) -> Client:
    return api(globex, issue(globex))
