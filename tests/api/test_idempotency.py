"""`Idempotency-Key` on the API's writes (apps/tokens/idempotency.py, docs/api/idempotency.md):
a retry with the same key gets the first success's answer and does nothing twice; another
request under the key is refused; refusals are not kept; keys are one caller's in one workspace."""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.utils import timezone
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import invitation_tokens, member_role_change
from apps.runs.models import Run
from apps.tokens.idempotency import idempotency_keys_expire
from apps.tokens.models import ApiToken, IdempotencyKey
from apps.tokens.tasks import idempotency_keys_expire_all
from tests.api.conftest import api, issue
from tests.conftest import audit_events, client_for
from tests.runs.conftest import FINANCE, TRIAGE, deploy

CHAIN_LOCKS = 4611686018427387904  # audit_append's lock of a chain: tenant id - this (migration 0012)
TOKEN = {"name": "ci", "role": "developer", "scopes": ["read", "write"]}


def post(client, path: str, body, key: str | None = "k-1"):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(path, json.dumps(body), content_type="application/json", **headers)


def tokens_named(tenant, name: str = "ci") -> int:
    with schema_context(tenant.schema_name):
        return ApiToken.objects.filter(name=name).count()


def test_it_answers_a_retry_with_the_first_answer_and_issues_one_token(acme):
    client = api(acme, issue(acme))
    first = post(client, "/api/v1/tokens", TOKEN)
    assert first.status_code == 201, first.content
    assert "Idempotent-Replayed" not in first
    again = post(client, "/api/v1/tokens", TOKEN)
    assert again.status_code == 201
    assert again.content == first.content  # the same token, shown to the caller that asked for it
    assert again["Idempotent-Replayed"] == "true"
    assert again["Content-Type"] == first["Content-Type"]
    assert tokens_named(acme) == 1
    assert len(audit_events("acme", action="token.issued", target_id=str(first.json()["metadata"]["id"]))) == 1
    with schema_context("acme"):
        stored = IdempotencyKey.objects.get(key="k-1")
    assert first.json()["token"] not in stored.body_encrypted  # sealed: it holds a secret shown once


def test_it_starts_one_run_for_a_retried_start(acme):
    deploy(acme, FINANCE, TRIAGE)
    client = api(acme, issue(acme))
    body = {"agent": "invoice-triage", "input": "Triage invoice INV-1001."}
    first = post(client, "/api/v1/runs", body, key="0b6e3f1c-run")
    again = post(client, "/api/v1/runs", body, key="0b6e3f1c-run")
    assert (first.status_code, again.status_code) == (201, 201), first.content
    assert again.json()["id"] == first.json()["id"]
    with schema_context("acme"):
        assert Run.objects.count() == 1
    # The same body under a new key is a new request: a second run.
    assert post(client, "/api/v1/runs", body, key="0b6e3f1c-run-2").json()["id"] != first.json()["id"]


def test_the_draft_quoted_form_of_a_key_is_the_same_key(acme):
    client = api(acme, issue(acme))
    assert post(client, "/api/v1/tokens", TOKEN, key="abc").status_code == 201
    again = post(client, "/api/v1/tokens", TOKEN, key='"abc"')
    assert again["Idempotent-Replayed"] == "true"
    assert tokens_named(acme) == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/tokens", {**TOKEN, "name": "other"}),  # another body
        ("/api/v1/tokens", {"scopes": ["read", "write"], "role": "developer", "name": "cj"}),
        ("/api/v1/tokens?x=1", TOKEN),  # another query
        ("/api/v1/members", {"email": "new@acme.test", "role": "viewer"}),  # another path
    ],
)
def test_a_key_sent_with_another_request_is_refused_and_changes_nothing(acme, path, body):
    client = api(acme, issue(acme))
    assert post(client, "/api/v1/tokens", TOKEN).status_code == 201
    refused = post(client, path, body)
    assert refused.status_code == 422, refused.content
    assert refused.json()["error"]["code"] == "idempotency_key_reused"
    with schema_context("acme"):
        assert ApiToken.objects.filter(name__in=["other", "cj"]).count() == 0
        assert not acme_member("new@acme.test")


def acme_member(email: str) -> bool:
    from apps.accounts.models import User

    return User.objects.filter(email=email).exists()


def test_the_same_object_in_another_key_order_is_the_same_request(acme):
    client = api(acme, issue(acme))
    assert post(client, "/api/v1/tokens", TOKEN).status_code == 201
    reordered = client.post(
        "/api/v1/tokens",
        '{"scopes": ["read", "write"], "role": "developer", "name": "ci"}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )
    assert reordered.status_code == 201 and reordered["Idempotent-Replayed"] == "true"


def test_a_refusal_is_not_kept_so_a_retry_after_the_cause_is_fixed_runs(acme):
    """A run of an agent not deployed yet is refused (409 agent_not_deployed); once it is deployed,
    the same request with the same key starts the run, rather than replaying the refusal."""
    client = api(acme, issue(acme))
    body = {"agent": "invoice-triage", "input": "Triage invoice INV-1001."}
    assert post(client, "/api/v1/runs", body).status_code == 404  # no such agent yet
    with schema_context("acme"):
        assert not IdempotencyKey.objects.exists()
    deploy(acme, FINANCE, TRIAGE)
    started = post(client, "/api/v1/runs", body)
    assert started.status_code == 201 and "Idempotent-Replayed" not in started


@pytest.mark.parametrize("key", ["", " ", '""', "x" * 256, "naïve", "a b", "tab\there", "line\x7f"])
def test_a_malformed_key_is_refused_before_anything_is_done(acme, key):
    client = api(acme, issue(acme))
    refused = post(client, "/api/v1/tokens", TOKEN, key=key)
    assert refused.status_code == 400, refused.content
    assert refused.json()["error"]["code"] == "idempotency_key_invalid"
    assert tokens_named(acme) == 0


def test_reads_ignore_a_key(acme):
    client = api(acme, issue(acme))
    listed = client.get("/api/v1/tokens", HTTP_IDEMPOTENCY_KEY="naïve")  # not even read
    assert listed.status_code == 200
    with schema_context("acme"):
        assert not IdempotencyKey.objects.exists()


def test_a_replay_is_answered_only_to_a_caller_still_allowed(acme):
    token = issue(acme)
    client = api(acme, token)
    assert post(client, "/api/v1/tokens", TOKEN).status_code == 201
    with schema_context("acme"):
        ApiToken.objects.exclude(name="ci").update(revoked_at=timezone.now())  # the caller's token
    assert post(client, "/api/v1/tokens", TOKEN).status_code == 401


def test_keys_are_each_callers_own(acme):
    """Another token of the same workspace sending the same key makes its own request."""
    first, second = api(acme, issue(acme, name="one")), api(acme, issue(acme, name="two"))
    assert post(first, "/api/v1/tokens", TOKEN).status_code == 201
    other = post(second, "/api/v1/tokens", TOKEN)
    assert other.status_code == 201 and "Idempotent-Replayed" not in other
    assert tokens_named(acme) == 2


def test_another_workspace_never_sees_or_replays_a_key(acme, globex):
    """The same key, even from a caller named alike (a token with the same prefix cannot be, so
    the principal's id differs by workspace anyway), never answers from another workspace's
    record, and the records live in each workspace's own schema."""
    acme_client, globex_client = api(acme, issue(acme)), api(globex, issue(globex))
    acme_answer = post(acme_client, "/api/v1/tokens", TOKEN)
    globex_answer = post(globex_client, "/api/v1/tokens", TOKEN)
    assert globex_answer.status_code == 201 and "Idempotent-Replayed" not in globex_answer
    assert globex_answer.json()["token"] != acme_answer.json()["token"]
    with schema_context("globex"):
        globex_rows = list(IdempotencyKey.objects.values_list("principal", "key"))
        IdempotencyKey.objects.update(principal=IdempotencyKey.objects.get().principal)
    with schema_context("acme"):
        acme_rows = list(IdempotencyKey.objects.values_list("principal", "key"))
        # Copy acme's sealed answer into globex's row for the same caller and key: it opens only where
        # it was sealed, so it is no way to read acme's answer on globex either.
        sealed = IdempotencyKey.objects.get().body_encrypted
    assert len(globex_rows) == len(acme_rows) == 1
    with schema_context("globex"):
        IdempotencyKey.objects.update(body_encrypted=sealed)
    refused = post(globex_client, "/api/v1/tokens", TOKEN)
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "secret_undecryptable"
    assert acme_answer.json()["token"] not in refused.content.decode()


def test_a_key_past_its_time_is_a_new_request_and_the_sweep_removes_it(acme, settings):
    client = api(acme, issue(acme))
    assert post(client, "/api/v1/tokens", TOKEN).status_code == 201
    with schema_context("acme"):
        IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    again = post(client, "/api/v1/tokens", TOKEN)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert tokens_named(acme) == 2
    with schema_context("acme"):
        assert IdempotencyKey.objects.count() == 1  # taken over, not a second row
        IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
        assert idempotency_keys_expire() == 1
    assert post(client, "/api/v1/tokens", TOKEN, key="k-2").status_code == 201
    with schema_context("acme"):
        IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency_keys_expire_all() >= 1
    with schema_context("acme"):
        assert not IdempotencyKey.objects.exists()


def test_rotation_seals_answers_under_the_new_key(acme, settings):
    from cryptography.fernet import Fernet

    client = api(acme, issue(acme))
    first = post(client, "/api/v1/tokens", TOKEN)
    old = list(settings.FOUNDRY_ENCRYPTION_KEYS)
    settings.FOUNDRY_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *old]
    call_command("rotate_encryption_keys")
    settings.FOUNDRY_ENCRYPTION_KEYS = settings.FOUNDRY_ENCRYPTION_KEYS[:1]  # the old key removed
    again = post(client, "/api/v1/tokens", TOKEN)
    assert again.status_code == 201 and again.content == first.content


def test_an_erasure_deletes_the_answers_kept(acme):
    from apps.lifecycle.erasure import member_erase

    client = api(acme, issue(acme))
    assert post(client, "/api/v1/members", {"email": "gone@acme.test", "role": "viewer"}).status_code == 201
    with schema_context("acme"):
        assert IdempotencyKey.objects.exists()
        erased = member_erase(actor="cli:erase_member", email="gone@acme.test")
        assert not IdempotencyKey.objects.exists()
    assert erased.rows[IdempotencyKey._meta.db_table] == 1


def test_the_schema_documents_the_header_on_writes_only(acme):
    document = api(acme).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = document["paths"]["/api/v1/tokens"]
    assert any(p["name"] == "Idempotency-Key" for p in operation["post"]["parameters"])
    assert not any(p.get("name") == "Idempotency-Key" for p in operation["get"].get("parameters", []))
    assert "idempotency_key_reused" in operation["post"]["responses"]["422"]["description"]


# --- two requests with one key at once (committed data: real concurrent transactions) ---------


def _concurrent(tenant, django_db_blocker, settings, *, wait: float):
    """A first request held inside its handler (its audit event waits for the workspace's chain,
    which another transaction holds) while a second with the same key arrives; (first response,
    second response, tokens issued)."""
    settings.FOUNDRY_IDEMPOTENCY_WAIT_SECONDS = wait
    with django_db_blocker.unblock():
        client = api(tenant, issue(tenant))
        held, release = threading.Event(), threading.Event()
        answers = {}

        def hold_chain():
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [tenant.pk - CHAIN_LOCKS])
                    held.set()
                    release.wait(15)
            finally:
                connections.close_all()

        def send(name):
            try:
                answers[name] = post(client, "/api/v1/tokens", TOKEN)
            finally:
                connections.close_all()

        def waiting(fragment: str) -> bool:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                        [f"%{fragment}%"],
                    )
                    if cursor.fetchone()[0]:
                        return True
                time.sleep(0.02)
            return False

        holder = threading.Thread(target=hold_chain)
        holder.start()
        assert held.wait(10)
        first = threading.Thread(target=send, args=("first",))
        first.start()
        second = threading.Thread(target=send, args=("second",))
        try:
            assert waiting("audit_append"), "the first request never reached its audit event"
            second.start()
            if wait > 1:
                assert waiting("tokens_idempotencykey"), "the second request never waited for the key"
            else:
                second.join(15)
        finally:
            release.set()
            holder.join(15)
            first.join(15)
            second.join(15)
        return answers["first"], answers["second"], tokens_named(tenant)


def test_a_retry_sent_while_the_first_is_answered_waits_for_its_answer(fresh_tenant, django_db_blocker, settings):
    first, second, issued = _concurrent(fresh_tenant, django_db_blocker, settings, wait=10)
    assert first.status_code == 201, first.content
    assert second.status_code == 201 and second["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    assert issued == 1


@pytest.mark.parametrize("wait", [0.2, 0])  # 0: no wait at all (PostgreSQL's lock_timeout 0 is none)
def test_a_retry_that_waited_too_long_is_told_to_come_back(fresh_tenant, django_db_blocker, settings, wait):
    first, second, issued = _concurrent(fresh_tenant, django_db_blocker, settings, wait=wait)
    assert first.status_code == 201, first.content
    assert second.status_code == 409 and second.json()["error"]["code"] == "idempotency_key_in_use"
    assert issued == 1
    with django_db_blocker.unblock():
        client_again = post(api(fresh_tenant, issue(fresh_tenant)), "/api/v1/tokens", TOKEN)
    assert "Idempotent-Replayed" not in client_again  # another caller: its own request


def test_every_view_of_the_api_answers_through_the_same_dispatch():
    """No API view answers writes around TenantAPIView.dispatch, which reads the key."""
    from foundry.api.access import TenantAPIView

    pending, views = list(TenantAPIView.__subclasses__()), []
    while pending:
        view = pending.pop()
        views.append(view)
        pending += view.__subclasses__()
    writers = [view for view in views if set(view.access) - {"GET"}]
    assert len(writers) > 10
    assert [view for view in writers if view.dispatch is not TenantAPIView.dispatch] == []


def test_a_demoted_owner_is_not_replayed_an_owners_invitation_link(acme):
    """A replay is answered once the view's rule is checked (members.manage), not the service's
    own (adding an owner takes owners.manage): an owner demoted to admin was handed the stored
    answer again, the live invitation link of a pending owner account, which sets that owner's
    password (found by the Idempotency-Key review). A caller whose role or scopes changed since
    gets 409 `idempotency_key_stale`, no answer."""
    with schema_context("acme"):
        User.objects.create_user("second-owner@acme.test", "A-strong-pass-4821!", role=Role.OWNER)
    owner = client_for(acme, "owner@acme.test")
    body = {"email": "boss@acme.test", "role": "owner"}
    first = post(owner, "/api/v1/members", body)
    assert first.status_code == 201, first.content
    with schema_context("acme"):
        member_role_change(
            actor=User.objects.get(email="second-owner@acme.test"),
            member=User.objects.get(email="owner@acme.test"),
            role=Role.ADMIN,
        )
    without_key = post(owner, "/api/v1/members", {"email": "boss2@acme.test", "role": "owner"}, key=None)
    assert without_key.status_code == 403, without_key.content  # an admin may not add an owner
    replay = post(owner, "/api/v1/members", body)
    # The link handed out again is still a working credential for the pending owner account.
    uid, token = replay.json()["invite_url"].rstrip("/").split("/")[-2:] if replay.status_code == 201 else ("", "")
    with schema_context("acme"):
        boss = User.objects.get(email="boss@acme.test")
        link_works = (
            bool(uid)
            and force_str(urlsafe_base64_decode(uid)) == str(boss.pk)
            and invitation_tokens.check_token(boss, token)
        )
    assert (replay.status_code, link_works) == (409, False), (replay.status_code, replay.content)
    assert replay.json()["error"]["code"] == "idempotency_key_stale"


def test_a_retried_erasure_gets_the_first_answer(acme):
    """The erasure deletes every answer the workspace keeps but its own request's claim: it had
    deleted that too, so its answer was never kept and a retry ran again, refused 400
    `person_unknown` (found by the Idempotency-Key review)."""
    client = api(acme, issue(acme))
    assert post(client, "/api/v1/members", {"email": "gone@acme.test", "role": "viewer"}, key=None).status_code == 201
    first = post(client, "/api/v1/members/erase", {"email": "gone@acme.test"})
    assert first.status_code == 200, first.content
    again = post(client, "/api/v1/members/erase", {"email": "gone@acme.test"})
    assert (again.status_code, again.get("Idempotent-Replayed")) == (200, "true"), again.content
    assert again.content == first.content
    with schema_context("acme"):
        assert IdempotencyKey.objects.filter(key="k-1").exists()


def test_a_post_that_writes_nothing_ignores_a_key_and_keeps_nothing(acme):
    """/validate needs only the read scope and writes nothing: an answer kept per fresh key for a
    day (each a row in the workspace, for any read token) would have done nothing once."""
    viewer = api(acme, issue(acme, role="viewer", scopes=("read",)))
    for _ in range(2):
        answered = post(viewer, "/api/v1/validate", {"content": "a: 1\n"}, key="v-1")
        assert answered.status_code == 200 and "Idempotent-Replayed" not in answered
    changed = post(viewer, "/api/v1/validate", {"content": "b: 2\n"}, key="v-1")  # no `idempotency_key_reused`
    assert changed.status_code == 200
    with schema_context("acme"):
        assert not IdempotencyKey.objects.exists()
    document = api(acme).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = document["paths"]["/api/v1/validate"]["post"]
    assert not any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", []))
