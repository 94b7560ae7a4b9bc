"""Responses with varied data (runs with sub-agents, SSO, sinks...), checked against the document."""

import json

import pytest

from tests.api.conftest import api, issue
from tests.api.openapi.oas import problems
from tests.identity.conftest import OidcServer
from tests.lifecycle.test_exports import run_here
from tests.providers.conftest import encryption_key  # noqa: F401
from tests.runs.conftest import FINANCE, TRIAGE, advance, delegating_run, deploy
from tests.runs.test_api import make_run, waiting_run


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def test_sweep2(acme, media, settings, capsys):
    import ipaddress

    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    agent = deploy(acme, FINANCE, TRIAGE)
    owner = api(acme, issue(acme, role="owner"))
    found = []

    def go(method, path, body=None, client=owner):
        if body is not None:
            r = client.generic(method, path, json.dumps(body), content_type="application/json")
        else:
            r = client.generic(method, path)
        p = problems(acme, method, path, r)
        if p:
            found.extend(p)
        return r

    # runs with data
    w = waiting_run(acme, agent)
    parent = delegating_run(acme)
    for _ in range(6):
        parent = advance(parent, acme.schema_name)
    failed = make_run(acme, agent, status="failed", reason="provider_error", message="boom")
    go("GET", "/api/v1/runs?page_size=100")
    for r in (w, parent, failed):
        go("GET", f"/api/v1/runs/{r.pk}")
        go("GET", f"/api/v1/runs/{r.pk}/steps")
        go("GET", f"/api/v1/runs/{r.pk}/approvals")
    go("POST", f"/api/v1/runs/{w.pk}/approve", {"step": 7})
    go("POST", f"/api/v1/runs/{w.pk}/approve", {"comment": "ok"})
    go("GET", f"/api/v1/runs/{w.pk}/approvals")
    # catalog state
    v2 = TRIAGE.replace("max_steps: 12", "max_steps: 11")
    go("POST", "/api/v1/agents", {"content": v2, "message": "v2"})
    go("POST", "/api/v1/agents/invoice-triage/deploy", {"version": 2})
    go("POST", "/api/v1/agents/invoice-triage/rollback", {"version": 1})
    go("GET", "/api/v1/agents/invoice-triage/versions")
    go("GET", "/api/v1/agents/invoice-triage/versions/3")
    go("GET", "/api/v1/agents/invoice-triage/diff?from=1&to=2")
    go("POST", "/api/v1/domains", {"content": FINANCE.replace("    AP:", "    PO: Purchase order.\n    AP:")})
    go("POST", "/api/v1/agents/invoice-triage/migrate", {})
    go("GET", "/api/v1/agents/invoice-triage/deployments")
    go("GET", "/api/v1/agents")
    go("GET", "/api/v1/domains")
    go("GET", "/api/v1/domains/finance/versions")
    go("GET", "/api/v1/domains/finance/diff?from=1")
    # budgets
    go(
        "PUT",
        "/api/v1/budgets",
        {"project": "", "monthly_tokens": 1000, "monthly_cost_usd": "12.50", "on_exhausted": "approve"},
    )
    go("PUT", "/api/v1/budgets", {"project": "accounts-payable", "monthly_tokens": 10**13})
    go("GET", "/api/v1/budgets")
    go("GET", "/api/v1/usage/statement")
    go("GET", "/api/v1/usage/statement?start=2026-12-01&end=2026-12-02")
    # providers
    go(
        "PUT",
        "/api/v1/providers/openai",
        {"api_key": "sk-test-abcdef123456", "base_url": "https://api.example.com/v1", "organization": "org"},
    )
    go("PUT", "/api/v1/providers/anthropic", {"api_key": "abc"})
    go("GET", "/api/v1/providers")
    go("GET", "/api/v1/providers/anthropic")
    # tokens issued by token / revoked
    t = go("POST", "/api/v1/tokens", {"name": "ci", "role": "admin", "scopes": ["read", "admin"]}).json()
    child = api(acme, t["token"])
    go("POST", "/api/v1/tokens", {"name": "grandchild", "role": "viewer", "scopes": ["read"]}, client=child)
    go("DELETE", f"/api/v1/tokens/{t['metadata']['id']}")
    go("GET", "/api/v1/tokens?page_size=100")
    # members: invited, erased
    m = go("POST", "/api/v1/members", {"email": "temp@acme.test", "role": "developer"}).json()
    go("POST", f"/api/v1/members/{m['member']['id']}/invite")
    go("POST", "/api/v1/members/erase", {"email": "temp@acme.test"})
    go("GET", "/api/v1/members?page_size=100")
    # sinks
    go(
        "PUT",
        "/api/v1/audit/sinks/hook",
        {"kind": "webhook", "url": "https://127.0.0.1:9/x", "secret": "s" * 20, "format": "ocsf"},
    )
    go("PUT", "/api/v1/audit/sinks/sys", {"kind": "syslog", "host": "siem.example.com", "port": 601, "tls": False})
    go("GET", "/api/v1/audit/sinks")
    go("GET", "/api/v1/audit/sinks/hook")
    # audit
    go("GET", "/api/v1/audit/events?page_size=1000")
    go("GET", "/api/v1/audit/verify")
    go("GET", "/api/v1/audit/checkpoints")
    # exports
    e = go("POST", "/api/v1/exports").json()
    run_here(acme, e["id"])
    go("GET", f"/api/v1/exports/{e['id']}")
    go("GET", "/api/v1/exports")
    # retention
    go("PUT", "/api/v1/retention", {"runs_days": None, "audit_days": 400, "audit_legal_hold": True})
    go("GET", "/api/v1/retention")
    go("POST", "/api/v1/retention/preview")
    # sso
    idp = OidcServer()
    try:
        go(
            "PUT",
            "/api/v1/sso",
            {
                "issuer": idp.issuer,
                "client_id": "foundry",
                "client_secret": "x" * 30,
                "roles_claim": "groups",
                "role_map": {"g": "admin"},
                "allowed_domains": ["acme.test"],
            },
        )
        go("GET", "/api/v1/sso")
        go("DELETE", "/api/v1/sso")
    finally:
        idp.close()
    go("GET", "/api/v1/workspace")
    print("\n".join(found))
    assert not found
