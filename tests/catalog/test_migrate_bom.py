"""A manifest saved with a UTF-8 byte-order mark (Notepad, many Windows editors) is accepted by
validation and publish, and migrate re-pins it: libyaml's marks, which the pin's rewrite cuts the
text by, do not count the mark."""

import json

from django.test import Client

from tests.api.conftest import issue
from tests.catalog.conftest import example

FINANCE = example("domains/finance.yaml")
TRIAGE = example("agents/invoice-triage.yaml")


def _post(client: Client, path: str, body: dict):
    return client.post(f"/api/v1/{path}", json.dumps(body), content_type="application/json")


def test_migrate_of_an_agent_published_from_a_file_with_a_bom(acme):
    client = Client(
        HTTP_HOST=f"{acme.slug}.localhost", HTTP_AUTHORIZATION=f"Bearer {issue(acme)}", raise_request_exception=False
    )
    assert _post(client, "domains", {"content": FINANCE}).status_code == 201
    newer = FINANCE.replace("    AP:", "    PO: Purchase order.\n    AP:")
    assert _post(client, "domains", {"content": newer}).status_code == 201
    published = _post(client, "agents", {"content": "\ufeff" + TRIAGE})
    assert published.status_code == 201, published.content  # validation and publish accept the BOM
    assert _post(client, "agents/invoice-triage/deploy", {"version": 1}).status_code == 201

    response = _post(client, "agents/invoice-triage/migrate", {})
    assert response.status_code == 200, response.content
    assert response.json()["deployment"]["domain"] == {"name": "finance", "version": 2}
