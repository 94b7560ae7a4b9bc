"""Migrate changes the pin and nothing else; a rollback publishes, so it validates the old content,
and a deploy of an older version validates it too."""

import json

import pytest
from django_tenants.utils import schema_context

from apps.catalog.models import Document, Kind, Version
from apps.catalog.services import agent_deploy_made
from foundry.manifests import digest
from foundry.manifests.loader import load
from tests.api.conftest import api, issue
from tests.catalog.conftest import example
from tests.conftest import tenant_user

FINANCE = example("domains/finance.yaml")
TRIAGE = example("agents/invoice-triage.yaml")
FINANCE_V2 = FINANCE.replace("    AP:", "    PO: Purchase order.\n    AP:")


def post(client, path, body):
    return client.post(f"/api/v1/{path}", json.dumps(body), content_type="application/json")


@pytest.fixture
def admin(acme):
    return api(acme, issue(acme, role="admin", scopes=("read", "write")))


def test_migrate_refuses_a_pin_that_shares_an_anchor(acme, admin):
    """docs/manifests.md: migrate "re-pins the live manifest" — the pin and nothing else. A pin
    anchored (`&one 1`) and aliased elsewhere (`max_steps: *one`) would carry the new number to
    the alias too: refused (`pin_shared`), nothing published."""
    source = TRIAGE.replace("version: 1", "version: &one 1").replace("max_steps: 12", "max_steps: *one")
    assert post(admin, "domains", {"content": FINANCE}).status_code == 201
    assert post(admin, "agents", {"content": source}).status_code == 201
    assert post(admin, "agents/invoice-triage/deploy", {"version": 1}).status_code == 201
    assert post(admin, "domains", {"content": FINANCE_V2}).status_code == 201
    response = post(admin, "agents/invoice-triage/migrate", {})
    assert response.status_code == 400 and response.json()["error"]["code"] == "pin_shared", response.content
    with schema_context(acme.schema_name):
        assert Document.objects.get(kind=Kind.AGENT, name="invoice-triage").latest_number == 1


def test_migrate_of_an_anchored_pin_used_nowhere_else_rewrites_it(acme, admin):
    source = TRIAGE.replace("version: 1", "version: &pin 1")
    assert post(admin, "domains", {"content": FINANCE}).status_code == 201
    assert post(admin, "agents", {"content": source}).status_code == 201
    assert post(admin, "agents/invoice-triage/deploy", {"version": 1}).status_code == 201
    assert post(admin, "domains", {"content": FINANCE_V2}).status_code == 201
    assert post(admin, "agents/invoice-triage/migrate", {}).status_code == 200
    with schema_context(acme.schema_name):
        migrated = Version.objects.get(document__name="invoice-triage", number=2)
    assert migrated.content["spec"]["domain"]["version"] == 2
    assert migrated.content["spec"]["limits"]["max_steps"] == 12


def _legacy_version(document: Document, source: str) -> Version:
    """A version as an older release published it (before a validation rule existed): inserted
    directly, as the append-only table allows."""
    content = load(source).data
    document.latest_number += 1
    document.save(update_fields=["latest_number"])
    return Version.objects.create(
        document=document,
        number=document.latest_number,
        digest=digest(content),
        source=source,
        content=content,
        message="published by an older release",
        author_name="old",
        author_email="old@acme.test",
    )


def test_rollback_revalidates_the_old_content(acme, admin):
    """`version_rollback` (apps/catalog/services.py) re-publishes an old version's content
    without validating it. A version published before a check existed (here
    `dis_field_reserved`: a field named `question`, which dis_query tools take as their own
    argument) is republished as the new latest version although publishing the very same YAML
    today is refused with 422. docs/manifests.md: publishing validates the document, and
    rollback *publishes* a new version; it must not be a way around today's validation."""
    legacy = FINANCE.replace("        name: {type: string, required: true}", "        question: {type: string}", 1)
    assert post(admin, "domains", {"content": legacy}).status_code == 422  # refused today
    assert post(admin, "domains", {"content": FINANCE}).status_code == 201  # v1
    with schema_context(acme.schema_name):
        document = Document.objects.get(kind=Kind.DOMAIN, name="finance")
        _legacy_version(document, legacy)  # v2, as once published
    assert post(admin, "domains", {"content": FINANCE_V2}).status_code == 201  # v3
    response = post(admin, "domains/finance/rollback", {"version": 2})
    assert response.status_code == 422, response.content
    with schema_context(acme.schema_name):
        assert Document.objects.get(kind=Kind.DOMAIN, name="finance").latest_number == 3


def test_deploy_says_whether_it_made_the_deployment_under_the_agents_lock(acme, admin):
    """201 only for the call that made the deployment, decided under the agent's row lock (two
    deploys of one version at once: one 201, one 200), as MCP's `created`."""
    assert post(admin, "domains", {"content": FINANCE}).status_code == 201
    assert post(admin, "agents", {"content": TRIAGE}).status_code == 201
    with schema_context(acme.schema_name):
        agent = Document.objects.get(kind=Kind.AGENT, name="invoice-triage")
        owner = tenant_user(acme, "owner@acme.test")
        first, made = agent_deploy_made(actor=owner, document=agent, number=1)
        again, made_again = agent_deploy_made(actor=owner, document=agent, number=1)
    assert (made, made_again, again.pk) == (True, False, first.pk)
    assert post(admin, "agents/invoice-triage/deploy", {"version": 1}).status_code == 200


def test_deploying_a_version_published_before_todays_checks_is_refused(acme, admin):
    """A deploy makes a version live as it is: one an older release published that today's checks
    refuse (here a `max_steps` of 0) is 422 like a rollback of it — on the API, the console and
    MCP alike, which share the service — and the live version stays."""
    legacy = TRIAGE.replace("max_steps: 12", "max_steps: 0")
    assert post(admin, "domains", {"content": FINANCE}).status_code == 201
    assert post(admin, "agents", {"content": legacy}).status_code == 422  # refused today
    assert post(admin, "agents", {"content": TRIAGE}).status_code == 201  # v1
    assert post(admin, "agents/invoice-triage/deploy", {"version": 1}).status_code == 201
    with schema_context(acme.schema_name):
        document = Document.objects.get(kind=Kind.AGENT, name="invoice-triage")
        _legacy_version(document, legacy)  # v2, as once published
    response = post(admin, "agents/invoice-triage/deploy", {"version": 2})
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "document_invalid" and error["details"], error
    with schema_context(acme.schema_name):
        document = Document.objects.get(kind=Kind.AGENT, name="invoice-triage")
        assert document.live.version.number == 1
        assert document.deployments.count() == 1
