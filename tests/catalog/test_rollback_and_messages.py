"""Rollbacks hash the content they store, and know a legacy version's content when the latest
already holds it; a message over 500 characters is `message_invalid` over the API as in the console;
validating a small document of many bad key names costs time and memory in proportion to it."""

import hashlib
import json

import pytest
from django_tenants.utils import schema_context

from apps.catalog import services
from apps.catalog.models import Version
from tests.api.conftest import api, issue
from tests.catalog.conftest import example

FINANCE = example("domains/finance.yaml")
TRIAGE = example("agents/invoice-triage.yaml")
# Published before the upgrade that took digests of the stored (jsonb) form: jsonb keeps -0.0 as
# 0.0, so this version's digest is of content no one can read back.
LEGACY_SOURCE = TRIAGE.replace("temperature: 0\n", "temperature: -0.0\n")


def post(client, path: str, body: dict):
    return client.post(f"/api/v1/{path}", json.dumps(body), content_type="application/json")


def sha256_of(content) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@pytest.fixture
def dev(acme):
    return api(acme, issue(acme, role="developer", scopes=("read", "write")))


@pytest.fixture
def legacy_v1(acme, dev, monkeypatch):
    """invoice-triage v1 published the way releases before the stored-form digest did."""
    assert post(dev, "domains", {"content": FINANCE}).status_code == 201
    with monkeypatch.context() as before_the_upgrade:
        before_the_upgrade.setattr(services, "_as_stored", lambda content: content)
        assert post(dev, "agents", {"content": LEGACY_SOURCE}).status_code == 201
    with schema_context(acme.schema_name):
        v1 = Version.objects.get(document__name="invoice-triage", number=1)
        assert v1.digest != sha256_of(v1.content)  # the legacy state the code itself accounts for
    return v1


def test_a_rollback_to_a_legacy_version_creates_a_version_whose_digest_is_not_of_its_content(acme, dev, legacy_v1):
    """A version published before digests were taken of the stored form holds the digest of content
    nobody can read back; a rollback to it copied that digest onto the new version, whose digest
    was then not the SHA-256 of its content (docs/manifests.md; the API's and git's Content-SHA256).
    A rollback hashes the content it stores, as a publish does."""
    assert post(dev, "agents", {"content": TRIAGE, "message": "v2"}).status_code == 201
    response = post(dev, "agents/invoice-triage/rollback", {"version": 1})
    assert response.status_code == 201, response.content
    served = dev.get("/api/v1/agents/invoice-triage/versions/3").json()
    assert served["restored_from"] == 1
    assert served["digest"] == sha256_of(served["content"]), "a new version's digest is not of its content"


def test_a_rollback_to_a_legacy_version_whose_content_is_already_latest_creates_a_duplicate(acme, dev, legacy_v1):
    """The latest version holds a legacy version's content (republished after the upgrade, hashed in
    the stored form): a rollback to the legacy one is a no-op (200, nothing created), as a publish
    of that content is; it compared the two digests, of two forms, and published a duplicate."""
    assert post(dev, "agents", {"content": TRIAGE, "message": "v2"}).status_code == 201
    republished = post(dev, "agents", {"content": LEGACY_SOURCE, "message": "back to -0.0"})
    assert republished.status_code == 201  # v3: the legacy content, hashed in the stored form
    response = post(dev, "agents/invoice-triage/rollback", {"version": 1})
    with schema_context(acme.schema_name):
        count = Version.objects.filter(document__name="invoice-triage").count()
    assert (response.status_code, count) == (200, 3), "a rollback to the latest content created a duplicate"


def test_a_message_over_500_characters_is_refused_as_message_invalid_over_the_api(dev):
    """docs/manifests.md: a message is at most 500 characters (`message_invalid`), over the API as in
    the console (the API's input check refused it first with DRF's own code)."""
    response = post(dev, "domains", {"content": FINANCE, "message": "x" * 501})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "message_invalid", response.content
