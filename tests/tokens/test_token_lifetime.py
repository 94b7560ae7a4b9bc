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


def test_a_member_signed_in_with_an_identity_providers_access_token_issues_tokens_that_expire_with_it(acme):
    from datetime import UTC, datetime

    from apps.tokens.services import token_issue
    from tests.conftest import tenant_user

    exp = int((datetime.now(UTC) + timedelta(minutes=30)).timestamp())
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        issued = token_issue(actor=owner, name="ci", role="developer", scopes=["read"], credential={"exp": exp})
        assert issued.token.expires_at == datetime.fromtimestamp(exp, tz=UTC)
        # A person signed in to the console (no credential) issues as they ask.
        assert token_issue(actor=owner, name="ci-2", role="developer", scopes=["read"]).token.expires_at is None


def test_a_bearer_token_in_its_minute_of_clock_skew_issues_no_token_already_expired(acme):
    """Its verifier accepts it up to 60 s past `exp`; a token it issued would expire no later than
    it, so already: refused (403), nothing issued or audited, instead of a secret shown once and
    refused at its first use."""
    import time

    from tests.conftest import audit_events

    service = service_token_issue(
        tenant_schema=acme.schema_name, service="worker", role="admin", scopes=("read", "admin"), ttl=1
    )
    time.sleep(2.1)  # past `exp`, within the leeway
    assert api(acme, service).get("/api/v1/tokens").status_code == 200  # still accepted
    response = api(acme, service).post("/api/v1/tokens", BODY, content_type="application/json")
    assert response.status_code == 403, response.content
    assert "has expired" in response.json()["error"]["message"]
    with schema_context("acme"):
        assert not ApiToken.objects.filter(name=BODY["name"]).exists()
    assert audit_events(acme.schema_name, action="token.issued") == []
