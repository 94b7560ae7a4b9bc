"""Cross-tenant attempts through REST and console entry points that no existing test drives with
another tenant's identifiers (review of tenant isolation).

globex owns a domain `gledger` and an agent `gtriage` (names acme does not have), a deployed
version, a run waiting for approval, an audit sink, a checkpoint and an API token. acme's
owner/admin tries to reach each of them from acme's host, by name, id, sequence number, filter or
page token; every attempt must fail cleanly and leave globex unchanged.
"""

import json

import pytest
from django.core.management import call_command
from django_tenants.utils import schema_context

from apps.audit.delivery import audit_sink_get
from apps.audit.scope import rls_scope
from apps.audit.services import audit_checkpoint_sign, audit_record
from apps.catalog.models import Deployment, Document, Version
from apps.runs.models import Approval, Run
from apps.tokens.models import ApiToken
from tests.api.conftest import api, issue
from tests.conftest import audit_events, client_for
from tests.runs.conftest import FINANCE, TRIAGE, deploy
from tests.runs.test_api import waiting_run

GLEDGER = FINANCE.replace("  name: finance", "  name: gledger")
GTRIAGE = TRIAGE.replace("  name: invoice-triage", "  name: gtriage").replace("    name: finance", "    name: gledger")
MARKER = "GLOBEX-SECRET-MARKER"


def post(client, path: str, body=None):
    return client.post(path, json.dumps(body if body is not None else {}), content_type="application/json")


def snapshot(tenant) -> dict:
    with schema_context(tenant.schema_name):
        return {
            "versions": sorted(Version.objects.values_list("document__name", "number", "digest")),
            "deployments": sorted(Deployment.objects.values_list("pk", "version__number", "domain_version__number")),
            "runs": sorted((str(pk), s) for pk, s in Run.objects.values_list("pk", "status")),
            "approvals": sorted(Approval.objects.values_list("pk", "decision")),
            "tokens": sorted(ApiToken.objects.values_list("pk", "revoked_at")),
        }


@pytest.fixture
def gworld(acme, globex):
    """globex's agent gtriage (v1 deployed, v2 published), its waiting run, and acme's own agent."""
    agent = deploy(globex, GLEDGER, GTRIAGE)
    deploy(globex, GTRIAGE.replace("temperature: 0", "temperature: 0.5"))  # v2, deployed
    run = waiting_run(globex, agent)
    # acme has its own finance/invoice-triage, so the lists are not trivially empty.
    mine = deploy(acme, FINANCE, TRIAGE)
    return {"agent": agent, "run": run, "acme_agent": mine}


# --- REST: agents by name ---------------------------------------------------------------------


AGENT_PATHS = [
    ("GET", "/api/v1/agents/gtriage"),
    ("GET", "/api/v1/agents/gtriage/versions"),
    ("GET", "/api/v1/agents/gtriage/versions/1"),
    ("GET", "/api/v1/agents/gtriage/diff?from=1&to=2"),
    ("GET", "/api/v1/agents/gtriage/deployments"),
    ("POST", "/api/v1/agents/gtriage/rollback"),
    ("POST", "/api/v1/agents/gtriage/migrate"),
    ("POST", "/api/v1/agents/gtriage/deploy"),
    ("GET", "/api/v1/domains/gledger/versions"),
    ("POST", "/api/v1/domains/gledger/rollback"),
]


@pytest.mark.parametrize(("method", "path"), AGENT_PATHS)
def test_globex_agent_and_domain_names_are_404_on_acme(acme, globex, gworld, method, path):
    before = snapshot(globex)
    client = api(acme, issue(acme, role="owner"))
    body = {"domain_version": 1} if path.endswith("/migrate") else {"version": 1}  # a valid body for each
    response = client.generic(method, path, json.dumps(body), content_type="application/json")
    assert response.status_code == 404, (method, path, response.content)
    assert response.json()["error"]["code"] in ("agent_not_found", "domain_not_found", "not_found")
    assert b"gledger" not in response.content or b"There is no" in response.content
    assert snapshot(globex) == before


def test_lists_and_filters_never_show_globex_documents(acme, globex, gworld):
    client = api(acme, issue(acme, role="owner"))
    for path in ("/api/v1/agents", "/api/v1/domains"):
        for flt in ("", 'name = "g*"', 'name = "gtriage"', 'name = "gledger"'):
            body = client.get(path, {"filter": flt} if flt else {}).json()
            names = [d["name"] for d in body["documents"]]
            assert "gtriage" not in names and "gledger" not in names, (path, flt, names)


def test_a_document_page_token_of_globex_is_refused_on_acme(acme, globex, gworld):
    deploy(
        globex,
        TRIAGE.replace("  name: invoice-triage", "  name: gsecond").replace("    name: finance", "    name: gledger"),
    )
    token = api(globex, issue(globex)).get("/api/v1/agents", {"page_size": 1}).json()["next_page_token"]
    assert token
    response = api(acme, issue(acme)).get("/api/v1/agents", {"page_size": 1, "page_token": token})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "page_token_mismatch")


def test_validate_on_acme_cannot_resolve_a_domain_pinned_only_in_globex(acme, globex, gworld):
    body = post(api(acme, issue(acme)), "/api/v1/validate", {"content": GTRIAGE}).json()
    assert body["valid"] is False
    assert MARKER not in json.dumps(body)


def test_publishing_an_agent_pinned_to_a_globex_domain_is_refused_on_acme(acme, globex, gworld):
    before = snapshot(globex)
    response = post(api(acme, issue(acme, role="owner")), "/api/v1/agents", {"content": GTRIAGE})
    assert response.status_code in (400, 422), response.content
    with schema_context(acme.schema_name):
        assert not Document.objects.filter(name="gtriage").exists()
    assert snapshot(globex) == before


# --- REST: runs by filters on other fields ------------------------------------------------------


@pytest.mark.parametrize(
    "flt",
    ['agent = "gtriage"', 'project = "accounts-payable" AND agent = "gtriage"', 'parent = "{run}"', 'id = "{run}"'],
)
def test_run_filters_naming_globex_objects_find_nothing_on_acme(acme, globex, gworld, flt):
    client = api(acme, issue(acme, role="owner"))
    response = client.get("/api/v1/runs", {"filter": flt.format(run=gworld["run"].pk)})
    assert response.status_code == 200, response.content
    assert response.json()["runs"] == []


def test_run_start_body_with_a_globex_agent_and_parent_does_not_reach_globex(acme, globex, gworld):
    before = snapshot(globex)
    client = api(acme, issue(acme, role="owner"))
    response = post(client, "/api/v1/runs", {"agent": "gtriage", "input": "hi"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "agent_not_found"
    assert snapshot(globex) == before


# --- REST: tokens and members by a real globex id -------------------------------------------------


def test_a_real_globex_token_id_is_404_on_acme_and_stays_valid(acme, globex):
    # Give globex a token id acme does not have (acme's tokens are fewer than globex's).
    for n in range(3):
        issue(globex, name=f"filler-{n}")
    plaintext = issue(globex, name="target")
    with schema_context(globex.schema_name):
        target = ApiToken.objects.get(name="target").pk
    with schema_context(acme.schema_name):
        ApiToken.objects.filter(pk__gte=target).delete()  # acme has no token with that id
    acme_owner = api(acme, issue(acme, role="owner"))
    with schema_context(acme.schema_name):
        assert not ApiToken.objects.filter(pk=target).exists() or ApiToken.objects.get(pk=target).name != "target"
    for method in ("GET", "DELETE"):
        response = acme_owner.generic(method, f"/api/v1/tokens/{target}")
        if response.status_code != 404:
            # acme happens to own a token with that id: then it must be acme's own, not globex's.
            assert response.status_code in (200, 204) and b"target" not in response.content
    assert api(globex, plaintext).get("/api/v1/workspace").status_code == 200


def test_erasing_an_email_known_only_in_globex_changes_nothing_there(acme, globex):
    before = audit_events(globex.schema_name)
    response = post(api(acme, issue(acme, role="owner")), "/api/v1/members/erase", {"email": "owner@globex.test"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "person_unknown"
    with schema_context(globex.schema_name):
        from apps.accounts.models import User

        assert User.objects.filter(email="owner@globex.test").exists()
    assert audit_events(globex.schema_name) == before


# --- REST: audit checkpoints, export cursor -------------------------------------------------------


def test_checkpoints_of_globex_never_show_on_acme(acme, globex, settings):
    from tests.audit.conftest import SIGNING_SEED

    settings.FOUNDRY_AUDIT_SIGNING_KEYS = [f"test1:{SIGNING_SEED}"]
    settings.FOUNDRY_AUDIT_PUBLIC_KEYS = []
    for n in range(3):
        audit_record(action="test.isolation.globex", actor="test", data={"marker": MARKER, "n": n}, chain=globex.pk)
    globex_cp = audit_checkpoint_sign(globex.pk)
    assert globex_cp is not None
    acme_admin = api(acme, issue(acme, role="owner", scopes=("read",)))
    body = acme_admin.get("/api/v1/audit/checkpoints", {"page_size": 1000}).json()
    assert {c["tenant_id"] for c in body["checkpoints"]} <= {acme.pk}
    flt = f"seq = {globex_cp.seq}"
    assert all(
        c["tenant_id"] == acme.pk
        for c in acme_admin.get("/api/v1/audit/checkpoints", {"filter": flt}).json()["checkpoints"]
    )
    # A page token of globex's checkpoint list is no token of acme's.
    audit_record(action="test.isolation.globex2", actor="test", chain=globex.pk)
    audit_checkpoint_sign(globex.pk)
    globex_admin = api(globex, issue(globex, role="owner", scopes=("read",)))
    token = globex_admin.get("/api/v1/audit/checkpoints", {"page_size": 1}).json()["next_page_token"]
    assert token
    response = acme_admin.get("/api/v1/audit/checkpoints", {"page_size": 1, "page_token": token})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "page_token_mismatch")


def test_audit_export_cursor_past_acmes_head_never_reads_globex(acme, globex):
    from apps.audit.export import chain_head

    while chain_head(globex.pk) <= chain_head(acme.pk) + 5:
        audit_record(action="test.isolation.pad", actor="test", data={"marker": MARKER}, chain=globex.pk)
    client = api(acme, issue(acme, role="owner", scopes=("read",)))
    response = client.get("/api/v1/audit/export", {"after": str(chain_head(acme.pk) + 2)})
    assert response.status_code == 400 and response.json()["error"]["code"] == "cursor_beyond_head"
    assert MARKER.encode() not in response.content


# --- console: agents, runs, sinks, editor --------------------------------------------------------


CONSOLE = [
    ("get", "/agents/gtriage/"),
    ("get", "/agents/gtriage/?version=2"),
    ("get", "/agents/gtriage/diff/?from=1&to=2"),
    ("post", "/agents/gtriage/deploy/1/"),
    ("post", "/agents/gtriage/migrate/"),
    ("post", "/agents/gtriage/rollback/1/"),
    ("get", "/catalog/agent/new/?name=gtriage"),
    ("get", "/catalog/agent/new/?name=gtriage&version=1"),
    ("get", "/catalog/domain/new/?name=gledger&version=1"),
]


@pytest.mark.parametrize(("method", "path"), CONSOLE)
def test_console_pages_of_globex_agents_are_404_on_acme(acme, globex, gworld, method, path):
    before = snapshot(globex)
    response = getattr(client_for(acme, "owner@acme.test"), method)(path)
    assert response.status_code == 404, (path, response.status_code)
    assert b"temperature: 0.5" not in response.content
    assert snapshot(globex) == before


def test_console_run_new_with_a_globex_agent_is_refused(acme, globex, gworld):
    before = snapshot(globex)
    owner = client_for(acme, "owner@acme.test")
    page = owner.get("/runs/new/", {"agent": "gtriage"})
    assert page.status_code == 200 and b"gtriage" not in page.content
    response = owner.post("/runs/new/", {"agent": "gtriage", "input": "hi"})
    assert response.status_code == 400
    with schema_context(acme.schema_name):
        assert not Run.objects.exists()
    assert snapshot(globex) == before


def test_console_validate_cannot_resolve_globex_domain(acme, globex, gworld):
    owner = client_for(acme, "owner@acme.test")
    response = owner.post("/catalog/agent/validate/", {"source": GTRIAGE})
    assert response.status_code == 200
    assert b"Accounts payable \xe2\x80\x94 vendors" not in response.content
    response = owner.post("/catalog/agent/publish/", {"source": GTRIAGE})
    assert response.status_code in (400, 422)
    with schema_context(acme.schema_name):
        assert not Document.objects.filter(name="gtriage").exists()


def _put_sink(tenant, name, host):
    client = api(tenant, issue(tenant))
    response = client.put(
        f"/api/v1/audit/sinks/{name}",
        json.dumps({"kind": "syslog", "host": host}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content  # created


def test_console_sink_pages_of_globex_are_404_on_acme(acme, globex):
    _put_sink(globex, "gsiem", "globex-secret.example.com")
    owner = client_for(acme, "owner@acme.test")
    listing = owner.get("/settings/audit-sinks/")
    assert listing.status_code == 200 and b"globex-secret" not in listing.content
    assert owner.get("/settings/audit-sinks/gsiem/").status_code == 404
    assert owner.get("/settings/audit-sinks/gsiem/delete/").status_code == 404
    assert owner.post("/settings/audit-sinks/gsiem/delete/").status_code == 404
    edit = owner.post(
        "/settings/audit-sinks/gsiem/",
        {
            "name": "gsiem",
            "kind": "syslog",
            "format": "jsonl",
            "enabled": "on",
            "host": "attacker.example.com",
            "cursor": "0",
        },
    )
    assert edit.status_code == 404
    sink = audit_sink_get(globex.pk, "gsiem")
    assert sink.host == "globex-secret.example.com" and sink.enabled
    with rls_scope(acme.pk):
        from apps.audit.models import AuditSink

        assert not AuditSink.objects.filter(name="gsiem").exists()


def test_a_sink_put_on_acme_with_a_globex_sinks_name_and_cursor_creates_acmes_own(acme, globex):
    _put_sink(globex, "shared", "globex-secret.example.com")
    client = api(acme, issue(acme))
    response = client.put(
        "/api/v1/audit/sinks/shared",
        json.dumps({"kind": "syslog", "host": "acme.example.com", "cursor": 0}),
        content_type="application/json",
    )
    assert response.status_code in (201, 400), response.content  # its own, created: not globex's replaced
    assert audit_sink_get(globex.pk, "shared").host == "globex-secret.example.com"
    body = client.get("/api/v1/audit/sinks/shared")
    assert b"globex-secret" not in body.content


def test_console_usage_page_and_statement_of_acme_hold_no_globex_usage(acme, globex):
    from django.utils import timezone

    from tests.billing.test_rollups import ledger_add

    ledger_add(globex, agent="gsecret-agent", model="gsecret-model", tokens=(777777, 1, 0), when=timezone.now())
    viewer = client_for(acme, "viewer@acme.test")
    for path, params in (
        ("/usage/", {}),
        ("/usage/", {"by": "model", "days": "7"}),
        ("/usage/statement/", {"format": "csv"}),
        ("/usage/statement/", {"format": "json"}),
    ):
        response = viewer.get(path, params)
        assert response.status_code == 200, (path, response.status_code)
        assert b"gsecret" not in response.content and b"777777" not in response.content, path


def test_console_audit_event_of_a_globex_seq_via_filter_is_absent(acme, globex):
    seq = audit_record(action="test.isolation.globex.console", actor="test", data={"marker": MARKER}, chain=globex.pk)
    owner = client_for(acme, "owner@acme.test")
    for flt in (
        'action = "test.isolation.*"',
        f"seq = {getattr(seq, 'seq', seq)}",
        'ip = "*" OR action = "test.isolation.globex.console"',
    ):
        response = owner.get("/audit/", {"filter": flt})
        assert response.status_code in (200, 400)
        # The filter text is echoed in the search box (escaped); the event itself must not be listed.
        html = response.content.decode().replace(flt.replace('"', "&quot;"), "")
        assert MARKER not in html and "test.isolation.globex.console" not in html, flt


def test_management_revoke_command_cannot_revoke_a_globex_token_through_acme(acme, globex):
    from django.core.management.base import CommandError

    plaintext = issue(globex, name="cli-target")
    prefix = plaintext.split("_")[1]
    with pytest.raises(CommandError):
        call_command("revoke_api_token", "acme", prefix)
    assert api(globex, plaintext).get("/api/v1/workspace").status_code == 200


def test_management_erase_member_of_acme_leaves_globex_person(acme, globex):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("erase_member", "acme", "owner@globex.test")
    with schema_context(globex.schema_name):
        from apps.accounts.models import User

        assert User.objects.filter(email="owner@globex.test").exists()
