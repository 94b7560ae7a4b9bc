"""The catalog over /api/v1/: publish, versions, diff, rollback, deploy, migrate, validate, schemas."""

import hashlib
import json
import time

import pytest
from django.db import DatabaseError, transaction
from django_tenants.utils import schema_context

from apps.catalog import services
from apps.catalog.models import Deployment, Document, Version
from tests.api.conftest import api, issue
from tests.catalog.conftest import example
from tests.conftest import audit_events

FINANCE = example("domains/finance.yaml")
TRIAGE = example("agents/invoice-triage.yaml")
LEGACY_SOURCE = TRIAGE.replace("temperature: 0\n", "temperature: -0.0\n")  # jsonb stores 0.0
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def post(client, path: str, body: dict):
    return client.post(f"/api/v1/{path}", json.dumps(body), content_type="application/json")


def codes(response) -> list[str]:
    return [p["code"] for p in response.json()["error"]["details"]]


@pytest.fixture
def acme_dev(acme):
    return api(acme, issue(acme, role="developer", scopes=("read", "write")))


def test_json_schemas_are_served_without_sign_in(acme):
    for kind in ("domain", "agent"):
        response = api(acme).get(f"/api/v1/schemas/{kind}.json")
        assert response.status_code == 200
        assert response.json()["$id"].endswith(f"/{kind}.json")
        assert response.json()["properties"]["kind"]["const"] == kind.title()


def test_publish_creates_a_version_with_the_sha256_of_the_canonical_content(acme, acme_dev):
    response = post(acme_dev, "domains", {"content": FINANCE, "message": "First cut"})
    assert response.status_code == 201, response.content
    version = response.json()["version"]
    assert (version["name"], version["number"], version["message"]) == ("finance", 1, "First cut")
    with schema_context(acme.schema_name):
        stored = Version.objects.get(document__name="finance", number=1)
    canonical = json.dumps(stored.content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert version["digest"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert stored.source == FINANCE
    assert version["author_name"].startswith("API token")


@pytest.mark.parametrize(
    "parameters",
    ["temperature: -0.0\n", "temperature: 0\n      seed: 1.0e+16\n"],  # jsonb: 0.0, and an integer
)
def test_a_versions_content_as_stored_and_served_hashes_to_its_digest(acme, acme_dev, parameters):
    """The digest is taken of the content as its jsonb column keeps it: PostgreSQL has no -0.0 and
    prints 1.0e+16 as an integer, so a digest of the parsed YAML named content no one can read back."""
    assert post(acme_dev, "domains", {"content": FINANCE}).status_code == 201
    source = TRIAGE.replace("temperature: 0\n", parameters)
    assert source != TRIAGE
    assert post(acme_dev, "agents", {"content": source}).status_code == 201
    version = acme_dev.get("/api/v1/agents/invoice-triage/versions/1").json()
    canonical = json.dumps(version["content"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(canonical.encode()).hexdigest() == version["digest"]
    assert post(acme_dev, "agents", {"content": source}).json()["version"]["number"] == 1  # unchanged: a no-op


def test_publishing_identical_content_is_a_no_op(acme_dev):
    assert post(acme_dev, "domains", {"content": FINANCE}).status_code == 201
    reworded = "# only comments and layout differ\n" + FINANCE.replace("    AP: ", "    AP:   ")
    response = post(acme_dev, "domains", {"content": reworded})
    assert response.status_code == 200
    assert response.json() == {"created": False, "version": response.json()["version"]}
    assert response.json()["version"]["number"] == 1


def test_an_invalid_document_is_refused_with_every_problem_and_changes_nothing(acme, acme_dev):
    broken = TRIAGE.replace("provider: scripted", "provider: gpt").replace("version: 1", "version: 7")
    response = post(acme_dev, "agents", {"content": broken, "filename": "triage.yaml"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "document_invalid"
    assert sorted(codes(response)) == ["dis_not_found", "provider_unknown"]
    problem = next(p for p in error["details"] if p["code"] == "provider_unknown")
    assert (problem["file"], problem["line"], problem["path"]) == ("triage.yaml", 15, "/spec/model/provider")
    with schema_context(acme.schema_name):
        assert not Document.objects.exists()


def test_a_pin_to_a_missing_domain_version_is_reported_on_its_line(acme_dev):
    post(acme_dev, "domains", {"content": FINANCE})
    response = post(acme_dev, "agents", {"content": TRIAGE.replace("version: 1", "version: 2")})
    assert codes(response) == ["dis_version_not_found"]
    assert response.json()["error"]["details"][0]["line"] == 13


def test_the_wrong_kind_for_the_endpoint_is_refused(acme_dev):
    response = post(acme_dev, "agents", {"content": FINANCE})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "kind_mismatch")


def test_validate_reports_without_publishing(acme, acme_dev):
    response = post(acme_dev, "validate", {"content": TRIAGE, "filename": "a.yaml"})
    assert response.status_code == 200
    body = response.json()
    assert (body["valid"], body["kind"], body["name"]) == (False, "agent", "invoice-triage")
    assert [p["code"] for p in body["problems"]] == ["dis_not_found"]
    post(acme_dev, "domains", {"content": FINANCE})
    assert post(acme_dev, "validate", {"content": TRIAGE}).json()["valid"] is True
    with schema_context(acme.schema_name):
        assert not Document.objects.filter(kind="agent").exists()


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (BOMB, "yaml_alias_expansion"),
        ("x: !!python/object/apply:os.system [echo hi]\n", "yaml_tag_forbidden"),
        ("a: 1\na: 2\n", "yaml_duplicate_key"),
        ("[" * 200 + "]" * 200, "yaml_too_deep"),
        ("just a string", "yaml_not_mapping"),
    ],
)
def test_hostile_yaml_is_refused_quickly_with_no_side_effects(acme, acme_dev, content, code):
    started = time.perf_counter()
    response = post(acme_dev, "domains", {"content": content})
    assert time.perf_counter() - started < 2
    assert response.status_code == 422
    assert codes(response)[0] == code
    with schema_context(acme.schema_name):
        assert not Document.objects.exists()


@pytest.mark.parametrize(
    "body",
    # A document over 1 MiB is the loader's to refuse (422 yaml_too_large: tests/catalog/test_document_size.py).
    [{}, {"content": ["a"]}, {"content": FINANCE, "message": "x" * 501}],
)
def test_malformed_requests_get_a_400(acme_dev, body):
    response = post(acme_dev, "domains", body)
    assert response.status_code == 400
    assert response.json()["error"]["code"]


@pytest.mark.parametrize(
    "message",
    ["Fix \u202egnp.exe", "a\u2066b\u2069", "bell\x07", "esc\x1b[31m", "next\x85line", "csi\x9b31m", "del\x7f"],
)
def test_a_version_message_holding_a_control_or_bidi_override_is_refused(acme, acme_dev, message):
    """Such a message would read other than it is written in the console's history and in forge:
    a bidi override reverses what follows it, C1 and escape codes reach terminals."""
    response = post(acme_dev, "domains", {"content": FINANCE, "message": message})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "message_invalid")
    with schema_context(acme.schema_name):
        assert not Document.objects.exists()
    accepted = post(
        acme_dev, "domains", {"content": FINANCE, "message": "Première\tversion \u2014 ok\n\U0001f468\u200d\U0001f4bb"}
    )
    assert accepted.status_code == 201, accepted.content


def test_versions_diff_and_rollback(acme, acme_dev):
    post(acme_dev, "domains", {"content": FINANCE})
    changed = FINANCE.replace("        onboarded_on: {type: date}\n", "        rating: {type: integer}\n")
    assert post(acme_dev, "domains", {"content": changed, "message": "Rating"}).status_code == 201

    versions = acme_dev.get("/api/v1/domains/finance/versions").json()["versions"]
    assert [v["number"] for v in versions] == [2, 1]
    detail = acme_dev.get("/api/v1/domains/finance/versions/2").json()
    assert detail["source"] == changed and detail["content"]["spec"]["entities"]["vendor"]["fields"]["rating"]

    diff = acme_dev.get("/api/v1/domains/finance/diff?from=1&to=2").json()
    changes = {(c["action"], c["what"], c["name"]) for c in diff["changes"]}
    assert ("added", "field", "vendor.rating") in changes
    assert ("removed", "field", "vendor.onboarded_on") in changes
    assert "-        onboarded_on: {type: date}" in diff["text"]
    assert "+        rating: {type: integer}" in diff["text"]
    unsaid = acme_dev.get("/api/v1/domains/finance/diff?to=2")
    assert (unsaid.status_code, unsaid.json()["error"]["code"]) == (400, "from_required")

    response = post(acme_dev, "domains/finance/rollback", {"version": 1, "message": "Undo rating"})
    assert response.status_code == 201
    restored = response.json()["version"]
    assert (restored["number"], restored["restored_from"]) == (3, 1)
    assert restored["digest"] == versions[1]["digest"]
    assert post(acme_dev, "domains/finance/rollback", {"version": 1}).status_code == 200  # already there
    with schema_context(acme.schema_name):
        assert len(audit_events("acme", action="dis.rollback")) == 1
        assert len(audit_events("acme", action="dis.publish")) == 2


def test_unknown_versions_and_documents_are_404(acme_dev):
    post(acme_dev, "domains", {"content": FINANCE})
    assert acme_dev.get("/api/v1/domains/finance/versions/9").json()["error"]["code"] == "version_not_found"
    assert acme_dev.get("/api/v1/domains/finance/diff?from=abc&to=1").status_code == 404
    assert post(acme_dev, "domains/finance/rollback", {"version": 9}).status_code == 404
    assert acme_dev.get("/api/v1/domains/nothing").status_code == 404
    assert acme_dev.get("/api/v1/agents/finance").status_code == 404  # a domain is not an agent


def test_deploy_then_migrate_to_a_newer_domain(acme, acme_dev):
    post(acme_dev, "domains", {"content": FINANCE})
    post(acme_dev, "agents", {"content": TRIAGE})
    deployed = post(acme_dev, "agents/invoice-triage/deploy", {"version": 1})
    assert deployed.status_code == 201, deployed.content
    assert post(acme_dev, "agents/invoice-triage/deploy", {"version": 1}).status_code == 200  # already live
    assert deployed.json()["domain"] == {"name": "finance", "version": 1}
    assert deployed.json()["domain_outdated"] is False

    post(acme_dev, "domains", {"content": FINANCE.replace("GBP]", "GBP, CHF]")})
    live = acme_dev.get("/api/v1/agents/invoice-triage").json()["live"]
    assert (live["version"], live["domain_outdated"], live["domain_latest_version"]) == (1, True, 2)

    migrated = post(acme_dev, "agents/invoice-triage/migrate", {})
    assert migrated.status_code == 200, migrated.content
    body = migrated.json()
    assert body["changed"] is True
    assert (body["deployment"]["version"], body["deployment"]["domain"]["version"]) == (2, 2)
    source = acme_dev.get("/api/v1/agents/invoice-triage/versions/2").json()["source"]
    assert "    version: 2\n" in source and source.startswith("# Reads incoming invoices")  # comments kept
    assert post(acme_dev, "agents/invoice-triage/migrate", {}).json()["changed"] is False
    with schema_context(acme.schema_name):
        assert Deployment.objects.count() == 2
        assert len(audit_events("acme", action="agent.deploy")) == 2


def test_a_migration_that_would_break_the_agent_changes_nothing(acme, acme_dev):
    post(acme_dev, "domains", {"content": FINANCE})
    post(acme_dev, "agents", {"content": TRIAGE})
    post(acme_dev, "agents/invoice-triage/deploy", {"version": 1})
    without_vendor = (
        FINANCE.replace("    vendor:\n      description: A company", "    supplier:\n      description: A company")
        .replace("entity: vendor", "entity: supplier")
        .replace("to: vendor", "to: supplier")
    )
    published = post(acme_dev, "domains", {"content": without_vendor})
    assert published.status_code == 201, published.content

    response = post(acme_dev, "agents/invoice-triage/migrate", {"domain_version": 2})
    assert response.status_code == 422
    assert "dis_unknown_entity" in codes(response)
    with schema_context(acme.schema_name):
        agent = Document.objects.get(kind="agent", name="invoice-triage")
        assert agent.latest_number == 1 and agent.live.version.number == 1


def test_migrate_needs_a_deployment(acme_dev):
    post(acme_dev, "domains", {"content": FINANCE})
    post(acme_dev, "agents", {"content": TRIAGE})
    response = post(acme_dev, "agents/invoice-triage/migrate", {})
    assert (response.status_code, response.json()["error"]["code"]) == (409, "not_deployed")


def test_versions_are_append_only_in_the_database(acme, finance):
    with schema_context(acme.schema_name):
        for statement in (
            lambda: Version.objects.filter(pk=finance.pk).update(message="rewritten"),
            lambda: Version.objects.filter(pk=finance.pk).delete(),
        ):
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                statement()
        assert Version.objects.get(pk=finance.pk).message == "test"


@pytest.mark.parametrize(
    ("role", "scopes", "path", "body"),
    [
        ("viewer", ("read", "write"), "domains", {"content": FINANCE}),
        ("developer", ("read",), "domains", {"content": FINANCE}),
        ("operator", ("read", "write"), "agents/invoice-triage/deploy", {"version": 1}),
        ("viewer", ("read", "write"), "agents/invoice-triage/rollback", {"version": 1}),
    ],
)
def test_writes_need_the_role_and_the_scope(acme, finance, role, scopes, path, body):
    client = api(acme, issue(acme, role=role, scopes=scopes))
    response = post(client, path, body)
    assert response.status_code == 403
    with schema_context(acme.schema_name):
        assert Version.objects.count() == 2 and not Deployment.objects.exists()


def test_another_tenant_cannot_reach_versions_diffs_or_deploys(acme, globex, finance):
    globex_token = issue(globex)
    # globex's token on acme's host authenticates nothing there
    intruder = api(acme, globex_token)
    assert intruder.get("/api/v1/domains/finance/versions").status_code == 401
    assert post(intruder, "agents/invoice-triage/deploy", {"version": 1}).status_code == 401
    # on its own host, globex sees none of acme's documents
    own = api(globex, globex_token)
    assert own.get("/api/v1/domains").json()["documents"] == []
    for path in ("domains/finance", "domains/finance/versions/1", "domains/finance/diff?from=1&to=1"):
        assert own.get(f"/api/v1/{path}").status_code == 404
    assert post(own, "agents/invoice-triage/deploy", {"version": 1}).status_code == 404
    # the same names in globex are its own, independent history
    assert post(own, "domains", {"content": FINANCE}).json()["version"]["number"] == 1
    assert post(own, "validate", {"content": TRIAGE}).json()["valid"] is True  # pins globex's finance v1
    with schema_context(acme.schema_name):
        assert not Deployment.objects.exists()


def test_republishing_unchanged_content_of_a_version_published_before_the_upgrade_is_a_no_op(
    acme, acme_dev, monkeypatch
):
    """A version published before digests were taken of the stored form holds the digest of the
    parsed YAML (`-0.0` hashed as -0.0, stored as 0.0): publishing the same file again is still a
    no-op, not a new version."""
    assert LEGACY_SOURCE != TRIAGE
    assert post(acme_dev, "domains", {"content": FINANCE}).status_code == 201
    with monkeypatch.context() as before_the_upgrade:
        before_the_upgrade.setattr(services, "_as_stored", lambda content: content)
        assert post(acme_dev, "agents", {"content": LEGACY_SOURCE}).status_code == 201
    with schema_context(acme.schema_name):
        assert Version.objects.filter(document__name="invoice-triage").count() == 1

    again = post(acme_dev, "agents", {"content": LEGACY_SOURCE})  # the same file, after the upgrade
    assert again.json()["version"]["number"] == 1, "unchanged content created a new version"
