"""Migrate rewrites the live manifest's pin reading the source as validation read it (libyaml,
timestamps kept as the text written): a manifest validation accepted — a tab after a mapping
colon (`version:\\t1`, a common editor artefact), a description `2026-02-30` that is no date —
migrates like any other (PyYAML's pure-Python reader refused the one and built a date of the
other, and both were 500s)."""

import json

import pytest
from django.test import Client

from tests.api.conftest import issue
from tests.catalog.conftest import example

FINANCE = example("domains/finance.yaml")
TRIAGE = example("agents/invoice-triage.yaml")


def _post(client: Client, path: str, body: dict):
    return client.post(f"/api/v1/{path}", json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(
    "edit",
    [
        ("    version: 1", "    version:\t1"),  # a tab after the colon: libyaml reads it, PyYAML does not
        (
            "  description: Triage incoming invoices against the finance domain.",
            "  description: 2026-02-30",
        ),  # not a real date
    ],
    ids=["tab-after-colon", "impossible-date-as-text"],
)
def test_a_deployed_manifest_validation_accepted_migrates(acme, edit):
    client = Client(
        HTTP_HOST=f"{acme.slug}.localhost", HTTP_AUTHORIZATION=f"Bearer {issue(acme)}", raise_request_exception=False
    )
    assert _post(client, "domains", {"content": FINANCE}).status_code == 201
    assert (
        _post(
            client, "domains", {"content": FINANCE.replace("    AP:", "    PO: Purchase order.\n    AP:")}
        ).status_code
        == 201
    )
    source = TRIAGE.replace(*edit)
    assert source != TRIAGE
    published = _post(client, "agents", {"content": source})
    assert published.status_code == 201, published.content  # validation accepts it
    assert _post(client, "agents/invoice-triage/deploy", {"version": 1}).status_code == 201
    response = _post(client, "agents/invoice-triage/migrate", {})
    assert response.status_code == 200, response.content
    assert response.json()["deployment"]["domain"] == {"name": "finance", "version": 2}
