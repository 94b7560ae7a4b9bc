"""A refused permission is `access.denied` (outcome denied) with the principal as actor —
also when the refusal comes from a service or an inline check rather than the matrix guard
(docs/audit.md; PRODUCT.md "Audit"). And token refusals on the git endpoint carry the request."""

import json

from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.permissions import Role
from apps.tokens.models import ApiToken
from apps.tokens.services import token_revoke
from tests.api.conftest import api, issue
from tests.audit.watch import Watch, describe
from tests.conftest import client_for, tenant_user


def _one_denial(watch: Watch, actor: str, response) -> None:
    new = watch.new("acme")
    denied = [e for e in new if e.action == "access.denied"]
    assert len(denied) == 1, f"expected one access.denied event, got {describe(new)}"
    (event,) = denied
    assert (event.actor_id, event.actor_type, event.outcome) == (actor, actor.split(":")[0], "denied")
    assert event.request_id == response["X-Request-ID"]
    assert event.ip == "127.0.0.1"


def test_an_admin_changing_sso_in_the_console_is_audited_as_denied(acme):
    admin = tenant_user(acme, "admin@acme.test")
    client = client_for(acme, "admin@acme.test")
    watch = Watch()
    response = client.post("/settings/sso/", {"issuer": "https://idp.example", "client_id": "evil"})
    assert response.status_code == 403
    _one_denial(watch, f"user:{admin.pk}", response)


def test_an_admin_promoting_a_member_to_owner_over_the_api_is_audited_as_denied(acme):
    viewer = tenant_user(acme, "viewer@acme.test")
    plaintext = issue(acme, role=Role.ADMIN)
    watch = Watch()
    response = api(acme, plaintext).patch(
        f"/api/v1/members/{viewer.pk}", json.dumps({"role": "owner"}), content_type="application/json"
    )
    assert response.status_code == 403, response.content
    _one_denial(watch, f"token:{plaintext[3:15]}", response)


def test_an_admin_promoting_a_member_to_owner_in_the_console_is_audited_as_denied(acme):
    admin = tenant_user(acme, "admin@acme.test")
    viewer = tenant_user(acme, "viewer@acme.test")
    watch = Watch()
    response = client_for(acme, "admin@acme.test").post(f"/members/{viewer.pk}/role/", {"role": Role.OWNER})
    assert response.status_code == 403
    _one_denial(watch, f"user:{admin.pk}", response)


def test_a_token_issuing_a_token_wider_than_itself_is_audited_as_denied(acme):
    plaintext = issue(acme, role=Role.ADMIN, scopes=("read", "admin"))
    watch = Watch()
    response = api(acme, plaintext).post(
        "/api/v1/tokens",
        json.dumps({"name": "wider", "role": Role.DEVELOPER, "scopes": ["run"]}),
        content_type="application/json",
    )
    assert response.status_code == 403, response.content
    _one_denial(watch, f"token:{plaintext[3:15]}", response)


def test_an_admin_issuing_an_owner_token_in_the_console_is_audited_as_denied(acme):
    admin = tenant_user(acme, "admin@acme.test")
    watch = Watch()
    response = client_for(acme, "admin@acme.test").post(
        "/settings/tokens/new/", {"name": "owner-token", "role": Role.OWNER, "scopes": ["read"]}
    )
    assert response.status_code == 403
    _one_denial(watch, f"user:{admin.pk}", response)


def test_a_git_fetch_by_a_token_that_may_not_read_is_audited_as_denied(acme):
    plaintext = issue(acme, role=Role.ADMIN, scopes=("write",))
    watch = Watch()
    response = Client(HTTP_HOST="acme.localhost").get(
        "/git/foundry.git/info/refs?service=git-upload-pack", HTTP_AUTHORIZATION=f"Bearer {plaintext}"
    )
    assert response.status_code == 403
    _one_denial(watch, f"token:{plaintext[3:15]}", response)


def test_a_revoked_token_refused_by_the_git_endpoint_names_the_request(acme):
    plaintext = issue(acme)
    with schema_context("acme"):
        token_revoke(actor="test", token=ApiToken.objects.get(prefix=plaintext[3:15]))
    watch = Watch()
    response = Client(HTTP_HOST="acme.localhost").get(
        "/git/foundry.git/info/refs?service=git-upload-pack", HTTP_AUTHORIZATION=f"Bearer {plaintext}"
    )
    assert response.status_code == 401
    (event,) = [e for e in watch.new("acme") if e.action == "auth.token.rejected"]
    assert event.outcome == "failure"
    # As on the API (tests/audit/test_actions.py, token-rejected): the address, agent and request.
    assert (event.ip, event.request_id) == ("127.0.0.1", response["X-Request-ID"])


def test_a_download_with_a_forged_export_link_is_audited_as_denied(acme):

    from apps.lifecycle.models import Export

    with schema_context("acme"):
        export = Export.objects.create(
            status=Export.Status.SUCCEEDED, created_by="test", file="exports/acme/x.zip", finished_at=timezone.now()
        )
    plaintext = issue(acme)
    watch = Watch()
    response = api(acme, plaintext).get(f"/api/v1/exports/{export.pk}/download?signature=forged")
    assert response.status_code == 403 and response.json()["error"]["code"] == "link_invalid"
    new = watch.new("acme")
    # The whole workspace's data is behind this link: a refused download says so in the trail
    # (as export.downloaded says a granted one), e.g. export.download_denied, outcome denied.
    refused = [e for e in new if e.target_type == "lifecycle.export" and e.outcome in ("denied", "failure")]
    assert len(refused) == 1, describe(new)


def test_a_refused_token_retried_is_audited_once_a_minute_per_address(acme, monkeypatch):
    """A script retrying a revoked token, or someone trying secrets for a known prefix, would
    append an event per request: one per minute per token, reason and address is kept."""
    from apps.audit import services

    plaintext = issue(acme)
    with schema_context("acme"):
        token_revoke(actor="test", token=ApiToken.objects.get(prefix=plaintext[3:15]))
    wrong = plaintext[:-4] + ("AAAA" if not plaintext.endswith("AAAA") else "BBBB")
    watch = Watch()

    def get(token: str, address: str = "127.0.0.1") -> int:
        client = Client(HTTP_HOST="acme.localhost", REMOTE_ADDR=address)
        return client.get("/api/v1/members", HTTP_AUTHORIZATION=f"Bearer {token}").status_code

    assert {get(plaintext) for _ in range(5)} | {get(wrong) for _ in range(5)} == {401}
    assert get(plaintext, "192.0.2.7") == 401

    def seen(watch: Watch) -> list[tuple]:
        return [(e.data["reason"], e.ip) for e in watch.new("acme") if e.action == "auth.token.rejected"]

    assert sorted(seen(watch)) == [("revoked", "127.0.0.1"), ("revoked", "192.0.2.7"), ("wrong_secret", "127.0.0.1")]
    minute = services.repeat_window()
    monkeypatch.setattr(services, "repeat_window", lambda: minute + 1)  # the next minute
    watch = Watch()
    assert get(plaintext) == 401
    assert seen(watch) == [("revoked", "127.0.0.1")]
