"""A token issuing a token: never wider than itself — in time too. A short-lived credential
(an API token that expires, a platform service token of at most 15 minutes) must not mint an API
token that outlives it: that turns a leaked one-hour CI token into a permanent credential that
survives the revocation or expiry of the one that made it."""

from datetime import timedelta

from django_tenants.utils import schema_context

from apps.identity.service_tokens import service_token_issue
from apps.tokens.models import ApiToken
from tests.api.conftest import api, issue

BODY = {"name": "forever", "role": "admin", "scopes": ["read", "admin"]}


def _minted_outlives(response, limit) -> bool:
    if response.status_code != 201:
        return False
    expires_at = response.json()["metadata"]["expires_at"]
    with schema_context("acme"):
        minted = ApiToken.objects.get(prefix=response.json()["metadata"]["prefix"])
    return expires_at is None or minted.expires_at > limit


def test_an_expiring_token_cannot_mint_a_token_that_never_expires(acme):
    parent = issue(acme, role="admin", scopes=["read", "admin"], expires_in=timedelta(hours=1))
    with schema_context("acme"):
        parent_expires = ApiToken.objects.get(prefix=parent.split("_")[1]).expires_at
    response = api(acme, parent).post("/api/v1/tokens", BODY, content_type="application/json")
    assert response.status_code in (201, 400, 403), response.content
    assert not _minted_outlives(response, parent_expires), response.json()


def test_a_fifteen_minute_service_token_cannot_mint_a_permanent_api_token(acme):
    from django.utils import timezone

    service = service_token_issue(
        tenant_schema=acme.schema_name, service="worker", role="admin", scopes=("read", "admin"), ttl=900
    )
    response = api(acme, service).post("/api/v1/tokens", BODY, content_type="application/json")
    assert response.status_code in (201, 400, 403), response.content
    assert not _minted_outlives(response, timezone.now() + timedelta(minutes=15)), response.json()
