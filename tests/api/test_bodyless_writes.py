"""Operations that take no body (their schema says `request=None`) refuse any key in one with
400 `field_unknown` and do nothing: a client's `{"dry_run": true}` to cancel a run, start an
export or re-issue an invitation is never taken as a condition the call respected. No body, or
`{}`, works as before."""

import json

import pytest
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.lifecycle.models import Export
from apps.runs.models import Run
from tests.runs.conftest import FINANCE, TRIAGE, deploy
from tests.runs.test_api import client as api_client
from tests.runs.test_api import make_run

ODD = json.dumps({"dry_run": True})


def _post(client, path, body):
    return client.post(path, body, content_type="application/json")


def _refused(response):
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert response.json()["error"]["code"] == "field_unknown"


def test_cancelling_a_run_with_a_body_field_is_refused_and_cancels_nothing(acme):
    run = make_run(acme, deploy(acme, FINANCE, TRIAGE))  # queued: a cancel would end it at once
    client = api_client(acme)
    _refused(_post(client, f"/api/v1/runs/{run.pk}/cancel", ODD))
    with schema_context("acme"):
        assert Run.objects.get(pk=run.pk).status == "queued"
    assert _post(client, f"/api/v1/runs/{run.pk}/cancel", "{}").status_code == 200


def test_starting_an_export_with_a_body_field_is_refused_and_starts_none(acme):
    client = api_client(acme, role="owner")
    _refused(_post(client, "/api/v1/exports", ODD))
    with schema_context("acme"):
        assert not Export.objects.exists()


@pytest.mark.parametrize("body", [ODD, json.dumps({"audit_days": 1})])
def test_a_retention_preview_with_a_body_field_is_refused(acme, body):
    _refused(_post(api_client(acme), "/api/v1/retention/preview", body))


def test_reissuing_an_invitation_with_a_body_field_is_refused(acme):
    with schema_context("acme"):
        member = User.objects.get(email="viewer@acme.test")
    client = api_client(acme)
    _refused(_post(client, f"/api/v1/members/{member.pk}/invite", json.dumps({"role": "owner"})))
    plain = _post(client, f"/api/v1/members/{member.pk}/invite", "{}")  # judged on its merits: viewer@ has joined
    assert plain.json()["error"]["code"] != "field_unknown", plain.content
