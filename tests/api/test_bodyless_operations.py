"""Operations that take no body refuse one that is no JSON object, falsy ones too (`null`, `false`,
`0`, `[]`, `""`), as every other operation does, and do nothing: the run stays queued, no export
starts (foundry/api/fields.py `no_body`). No body at all, or `{}`, is none."""

import pytest
from django_tenants.utils import schema_context

from apps.lifecycle.models import Export
from apps.runs.models import Run
from tests.api.conftest import api, issue
from tests.runs.conftest import FINANCE, TRIAGE, deploy
from tests.runs.test_api import make_run

FALSY_NON_OBJECTS = ["null", "false", "0", "[]", '""']


def _post(client, path, body):
    return client.post(path, body, content_type="application/json")


@pytest.mark.parametrize("body", FALSY_NON_OBJECTS)
def test_cancel_with_a_non_object_body_is_refused_and_cancels_nothing(acme, body):
    run = make_run(acme, deploy(acme, FINANCE, TRIAGE))  # queued: a cancel ends it at once
    client = api(acme, issue(acme, role="owner"))
    truthy = _post(client, f"/api/v1/runs/{run.pk}/cancel", "true")
    assert truthy.status_code == 400  # the truthy twin of the same malformed body is refused
    response = _post(client, f"/api/v1/runs/{run.pk}/cancel", body)
    with schema_context(acme.schema_name):
        status = Run.objects.get(pk=run.pk).status
    assert (response.status_code, status) == (400, "queued"), response.content[:200]
    assert set(response.json()["error"]) >= {"code", "message"}


@pytest.mark.parametrize("body", FALSY_NON_OBJECTS)
def test_export_start_with_a_non_object_body_is_refused_and_starts_none(acme, body):
    client = api(acme, issue(acme, role="owner"))
    response = _post(client, "/api/v1/exports", body)
    with schema_context(acme.schema_name):
        started = Export.objects.count()
    assert (response.status_code, started) == (400, 0), response.content[:200]
