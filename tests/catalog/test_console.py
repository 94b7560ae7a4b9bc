"""Console pages for domains and agents: versions, source, diff, rollback, deploy, migrate, isolation."""

import pytest
from django_tenants.utils import schema_context

from apps.catalog.models import Deployment, Document, Version
from apps.catalog.services import agent_deploy
from tests.catalog.conftest import example, publish
from tests.conftest import audit_events, client_for, tenant_user

FINANCE = example("domains/finance.yaml")
TRIAGE = example("agents/invoice-triage.yaml")
RATED = FINANCE.replace("        onboarded_on: {type: date}\n", "        rating: {type: integer}\n")
WITH_CHF = FINANCE.replace("GBP]", "GBP, CHF]")
WITHOUT_VENDOR = (
    FINANCE.replace("    vendor:\n      description: A company", "    supplier:\n      description: A company")
    .replace("entity: vendor", "entity: supplier")
    .replace("to: vendor", "to: supplier")
)


def deploy(tenant, number: int = 1, email: str = "developer@acme.test") -> Deployment:
    with schema_context(tenant.schema_name):
        agent = Document.objects.get(kind="agent", name="invoice-triage")
        return agent_deploy(actor=tenant_user(tenant, email), document=agent, number=number)


def snapshot(tenant) -> tuple:
    """Everything a catalog write could change."""
    with schema_context(tenant.schema_name):
        return (
            list(Document.objects.values_list("kind", "name", "latest_number", "live_id")),
            Version.objects.count(),
            Deployment.objects.count(),
        )


@pytest.fixture
def rated(acme, finance):
    """finance v1 and v2 (vendor.onboarded_on replaced by vendor.rating), invoice-triage v1 on finance v1."""
    return publish(acme, RATED, message="Rate vendors").version


def test_every_catalog_page_renders_for_a_viewer_without_write_controls(acme, rated):
    viewer = client_for(acme, "viewer@acme.test")
    for path in (
        "/domains/",
        "/domains/finance/",
        "/domains/finance/?version=1",
        "/domains/finance/diff/?from=1&to=2",
        "/agents/",
        "/agents/invoice-triage/",
        "/catalog/domain/new/",
        "/catalog/agent/new/?name=invoice-triage&version=1",
    ):
        response = viewer.get(path)
        assert response.status_code == 200, path
        for control in (b"Roll back", b"Deploy v", b"Migrate to", b">Publish<"):
            assert control not in response.content, (path, control)
    nav = [item["label"] for item in viewer.get("/").context["nav_items"]]
    assert nav[:3] == ["Dashboard", "Domains", "Agents"]


def test_the_domain_list_shows_name_latest_version_and_update(acme, rated):
    response = client_for(acme, "viewer@acme.test").get("/domains/")
    [row] = response.context["rows"]
    assert (row["document"].name, row["document"].latest_number, row["latest"].pk) == ("finance", 2, rated.pk)
    assert b'<tr data-name="finance">' in response.content


def test_a_domain_page_lists_versions_and_shows_the_chosen_source_with_line_numbers(acme, rated):
    response = client_for(acme, "viewer@acme.test").get("/domains/finance/?version=1")
    assert [v.number for v in response.context["versions"]] == [2, 1]
    assert response.context["selected"].number == 1
    lines = response.context["listing"].lines
    assert [(line.number, line.text) for line in lines] == list(enumerate(FINANCE.splitlines(), 1))
    assert b'<td class="ln">1</td><td class="code"># Accounts payable' in response.content
    assert rated.digest[:12].encode() in response.content
    assert b"Rate vendors" in response.content
    # the latest is shown by default; an unknown version is a 404 page, not a 500
    assert client_for(acme, "viewer@acme.test").get("/domains/finance/").context["selected"].number == 2
    missing = client_for(acme, "viewer@acme.test").get("/domains/finance/?version=9")
    assert missing.status_code == 404 and b"version_not_found" in missing.content


def test_the_diff_page_shows_structural_changes_and_the_coloured_text_diff(acme, rated):
    response = client_for(acme, "viewer@acme.test").get("/domains/finance/diff/?from=1&to=2")
    assert response.status_code == 200
    changes = {(c["action"], c["what"], c["name"]) for c in response.context["changes"]}
    assert {("added", "field", "vendor.rating"), ("removed", "field", "vendor.onboarded_on")} <= changes
    assert b'<span class="add">+        rating: {type: integer}</span>' in response.content
    assert b'<span class="del">-        onboarded_on: {type: date}</span>' in response.content


@pytest.mark.parametrize("query", ["?from=9&to=1", "?from=abc&to=2", "?from=1&to=-1"])
def test_a_diff_of_unknown_versions_is_a_404_page(acme, rated, query):
    response = client_for(acme, "viewer@acme.test").get(f"/domains/finance/diff/{query}")
    assert response.status_code == 404
    assert b"version_not_found" in response.content


def test_a_developer_rolls_back_after_seeing_what_the_rollback_applies(acme, rated):
    developer = client_for(acme, "developer@acme.test")
    confirm = developer.get("/domains/finance/rollback/1/")
    assert confirm.status_code == 200
    changes = {(c["action"], c["what"], c["name"]) for c in confirm.context["changes"]}
    assert {("removed", "field", "vendor.rating"), ("added", "field", "vendor.onboarded_on")} <= changes

    response = developer.post("/domains/finance/rollback/1/", {"message": "Undo rating"})
    assert response.status_code == 302
    assert response["Location"] == "/domains/finance/?version=3"
    with schema_context(acme.schema_name):
        restored = Version.objects.get(document__name="finance", number=3)
        original = Version.objects.get(document__name="finance", number=1)
        assert (restored.restored_from_id, restored.digest, restored.message) == (
            original.pk,
            original.digest,
            "Undo rating",
        )
        assert len(audit_events("acme", action="dis.rollback")) == 1
    page = developer.get(response["Location"])
    assert b"Rolled finance back to v1: it is now v3." in page.content
    assert b"(restored from v1)" in page.content


def test_rolling_back_to_the_latest_content_changes_nothing(acme, rated):
    before = snapshot(acme)
    response = client_for(acme, "developer@acme.test").post("/domains/finance/rollback/2/", follow=True)
    assert b"nothing changed" in response.content
    assert snapshot(acme) == before


def test_a_rollback_with_a_bad_message_is_refused_on_the_confirmation_page(acme, rated):
    before = snapshot(acme)
    response = client_for(acme, "developer@acme.test").post("/domains/finance/rollback/1/", {"message": "x" * 501})
    assert response.status_code == 400
    assert response.context["error"].code == "message_invalid"
    assert snapshot(acme) == before


def test_a_rollback_to_an_unknown_version_is_a_404(acme, rated):
    before = snapshot(acme)
    assert client_for(acme, "developer@acme.test").post("/domains/finance/rollback/9/").status_code == 404
    assert snapshot(acme) == before


@pytest.mark.parametrize("email", ["viewer@acme.test", "operator@acme.test"])
def test_rollback_publish_deploy_and_migrate_are_refused_without_the_permission(acme, rated, email):
    deploy(acme)
    publish(acme, WITH_CHF.replace("risk: {type: enum", "risk:   {type: enum"))
    before = snapshot(acme)
    client = client_for(acme, email)
    for method, path, data in (
        ("get", "/domains/finance/rollback/1/", {}),
        ("post", "/domains/finance/rollback/1/", {}),
        ("post", "/agents/invoice-triage/rollback/1/", {}),
        ("post", "/catalog/domain/publish/", {"source": WITH_CHF}),
        ("post", "/catalog/agent/publish/", {"source": TRIAGE.replace("max_steps: 12", "max_steps: 9")}),
        ("post", "/agents/invoice-triage/deploy/1/", {}),
        ("post", "/agents/invoice-triage/migrate/", {"domain_version": 3}),
    ):
        assert getattr(client, method)(path, data).status_code == 403, path
    assert snapshot(acme) == before


def test_the_agent_list_shows_project_live_version_pinned_domain_and_a_newer_domain(acme, finance):
    deploy(acme)
    viewer = client_for(acme, "viewer@acme.test")
    [row] = viewer.get("/agents/").context["rows"]
    assert (row["project"], row["document"].live.version.number, row["newer_domain"]) == ("accounts-payable", 1, None)
    publish(acme, WITH_CHF)
    response = viewer.get("/agents/")
    [row] = response.context["rows"]
    assert row["newer_domain"] == 2
    assert b"finance v1" in response.content
    assert b'<span class="badge outdated" data-testid="newer-domain">newer DIS v2 available</span>' in response.content


def test_a_developer_deploys_a_version_from_the_agent_page(acme, finance):
    developer = client_for(acme, "developer@acme.test")
    page = developer.get("/agents/invoice-triage/")
    assert b"Deploy v1" in page.content and b"Not deployed yet" in page.content
    response = developer.post("/agents/invoice-triage/deploy/1/")
    assert (response.status_code, response["Location"]) == (302, "/agents/invoice-triage/?version=1")
    with schema_context(acme.schema_name):
        live = Document.objects.get(name="invoice-triage").live
        assert (live.version.number, live.domain_version.number, live.deployed_by) == (1, 1, "developer@acme.test")
    page = developer.get(response["Location"])
    assert b"invoice-triage v1 is live, on finance v1." in page.content
    assert b"Deploy v1" not in page.content  # already live


def test_deploying_an_unknown_version_shows_the_error_and_changes_nothing(acme, finance):
    before = snapshot(acme)
    response = client_for(acme, "developer@acme.test").post("/agents/invoice-triage/deploy/9/")
    assert response.status_code == 404
    assert response.context["error"].code == "version_not_found"
    assert snapshot(acme) == before


def test_a_developer_migrates_the_live_agent_to_a_newer_domain(acme, finance):
    deploy(acme)
    publish(acme, WITH_CHF)
    developer = client_for(acme, "developer@acme.test")
    assert b"Migrate to finance v2" in developer.get("/agents/invoice-triage/").content
    response = developer.post("/agents/invoice-triage/migrate/", {"domain_version": "2"})
    assert (response.status_code, response["Location"]) == (302, "/agents/invoice-triage/?version=2")
    with schema_context(acme.schema_name):
        agent = Document.objects.get(name="invoice-triage")
        assert (agent.latest_number, agent.live.version.number, agent.live.domain_version.number) == (2, 2, 2)
        assert agent.live.reason == "migrate"
    page = developer.get(response["Location"])
    assert b"invoice-triage now runs on finance v2: v2 is live." in page.content
    assert b"newer DIS" not in page.content


def test_a_migration_that_would_break_the_agent_shows_the_problems_and_changes_nothing(acme, finance):
    deploy(acme)
    publish(acme, WITHOUT_VENDOR)
    before = snapshot(acme)
    response = client_for(acme, "developer@acme.test").post("/agents/invoice-triage/migrate/", {"domain_version": "2"})
    assert response.status_code == 422
    assert response.context["error"].code == "document_invalid"
    assert "dis_unknown_entity" in {p.code for p in response.context["problems"]}
    # each problem sits under its line of the live version's source
    line = TRIAGE.splitlines().index("      entity: vendor") + 1
    marked = {(line.number, p.code) for line in response.context["listing"].lines for p in line.problems}
    assert (line, "dis_unknown_entity") in marked
    assert f'data-line="{line}"'.encode() in response.content
    assert snapshot(acme) == before


def test_migrating_an_agent_that_is_not_deployed_says_so(acme, finance):
    before = snapshot(acme)
    response = client_for(acme, "developer@acme.test").post("/agents/invoice-triage/migrate/")
    assert (response.status_code, response.context["error"].code) == (409, "not_deployed")
    assert b"is not deployed; deploy a version first." in response.content
    assert snapshot(acme) == before


def test_migrating_to_an_unknown_or_older_domain_version_is_refused(acme, finance):
    deploy(acme)
    publish(acme, WITH_CHF)
    developer = client_for(acme, "developer@acme.test")
    developer.post("/agents/invoice-triage/migrate/", {"domain_version": "2"})
    before = snapshot(acme)
    for value, status, code in (("7", 404, "version_not_found"), ("1", 400, "domain_version_older")):
        response = developer.post("/agents/invoice-triage/migrate/", {"domain_version": value})
        assert (response.status_code, response.context["error"].code) == (status, code)
    assert snapshot(acme) == before


# --- isolation --------------------------------------------------------------------------------


@pytest.fixture
def ledger(globex):
    """globex's own domain, named differently from anything acme has."""
    return publish(globex, FINANCE.replace("  name: finance", "  name: ledger"), email="owner@globex.test").version


def test_another_tenants_documents_are_unreachable_from_acmes_host(acme, globex, finance, ledger):
    owner = client_for(acme, "owner@acme.test")
    before = snapshot(globex)
    assert [row["document"].name for row in owner.get("/domains/").context["rows"]] == ["finance"]
    for path in (
        "/domains/ledger/",
        "/domains/ledger/?version=1",
        "/domains/ledger/diff/?from=1&to=1",
        "/domains/ledger/rollback/1/",
        "/catalog/domain/new/?name=ledger",
    ):
        assert owner.get(path).status_code == 404, path
    assert owner.post("/domains/ledger/rollback/1/").status_code == 404
    assert snapshot(globex) == before


def test_a_session_of_one_tenant_is_unknown_on_the_other_tenants_host(acme, globex, finance, ledger):
    # globex's signed-in owner sends its cookie to acme's host: nobody is signed in there.
    globex_owner = client_for(globex, "owner@globex.test")
    globex_owner.defaults["HTTP_HOST"] = "acme.localhost"
    acme_before = snapshot(acme)
    for path in ("/domains/finance/", "/agents/invoice-triage/"):
        response = globex_owner.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), path
    assert globex_owner.post("/agents/invoice-triage/deploy/1/").status_code == 302
    assert snapshot(acme) == acme_before
    # and acme's owner cannot see globex's documents from globex's host either
    acme_owner = client_for(acme, "owner@acme.test")
    acme_owner.defaults["HTTP_HOST"] = "globex.localhost"
    response = acme_owner.get("/domains/ledger/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert b"ledger" not in response.content
