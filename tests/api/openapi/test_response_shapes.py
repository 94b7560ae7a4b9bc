"""Responses of every resource, checked against the published document (tests/api/openapi/oas.py)."""

import json

import pytest

from tests.api.conftest import api, issue
from tests.api.openapi.oas import problems
from tests.runs.conftest import FINANCE, TRIAGE, deploy


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def test_sweep(acme, media, capsys):
    deploy(acme, FINANCE, TRIAGE)
    owner = api(acme, issue(acme, role="owner"))
    viewer = api(acme, issue(acme, role="viewer", scopes=("read",)))
    anon = api(acme)
    found = []

    def go(client, method, path, body=None, **extra):
        if body is not None:
            r = client.generic(
                method,
                path,
                json.dumps(body) if not isinstance(body, str) else body,
                content_type="application/json",
                **extra,
            )
        else:
            r = client.generic(method, path, **extra)
        p = problems(acme, method, path, r)
        found.extend(p)
        return r

    def g(path, c=owner):
        return go(c, "GET", path)

    # members
    members = g("/api/v1/members").json()
    mid = members["members"][0]["id"] if "members" in members else None
    print("members keys", list(members))
    g(f"/api/v1/members/{mid}")
    g("/api/v1/members/999999")
    go(owner, "POST", "/api/v1/members", {"email": "new@acme.test", "role": "viewer"})
    go(owner, "POST", "/api/v1/members", {"email": "new@acme.test", "role": "viewer"})
    go(owner, "POST", "/api/v1/members", {"email": "x", "role": "nope"})
    go(owner, "POST", "/api/v1/members", {})
    go(owner, "PATCH", f"/api/v1/members/{mid}", {"role": "viewer"})
    go(owner, "PATCH", "/api/v1/members/999999", {"role": "viewer"})
    go(owner, "DELETE", "/api/v1/members/999999")
    go(owner, "POST", "/api/v1/members/999999/invite")
    go(owner, "POST", "/api/v1/members/erase", {"email": "nobody@acme.test"})
    g("/api/v1/members?filter=role:bogus")
    g("/api/v1/members?page_token=zzz")
    g("/api/v1/members?page_size=0")
    g("/api/v1/members", anon)
    go(viewer, "POST", "/api/v1/members", {"email": "y@acme.test", "role": "viewer"})
    # tokens
    t = go(owner, "POST", "/api/v1/tokens", {"name": "ci", "role": "viewer", "scopes": ["read"]})
    tid = t.json()["metadata"]["id"]
    go(owner, "POST", "/api/v1/tokens", {"name": "ci2", "role": "viewer", "scopes": ["read"], "expires_in": 3600})
    go(owner, "POST", "/api/v1/tokens", {"name": "", "role": "god", "scopes": ["x"]})
    g("/api/v1/tokens")
    g(f"/api/v1/tokens/{tid}")
    go(owner, "DELETE", f"/api/v1/tokens/{tid}")
    go(owner, "DELETE", f"/api/v1/tokens/{tid}")
    g("/api/v1/tokens/999999")
    # workspace
    g("/api/v1/workspace")
    go(owner, "PATCH", "/api/v1/workspace", {"name": "Acme"})
    go(owner, "PATCH", "/api/v1/workspace", {"bogus": 1})
    # catalog
    g("/api/v1/agents")
    g("/api/v1/domains")
    g("/api/v1/agents/invoice-triage")
    g("/api/v1/domains/finance")
    g("/api/v1/agents/invoice-triage/versions")
    g("/api/v1/agents/invoice-triage/versions/1")
    g("/api/v1/agents/invoice-triage/versions/99")
    g("/api/v1/domains/finance/versions/1")
    g("/api/v1/agents/invoice-triage/diff?from=1&to=1")
    g("/api/v1/agents/invoice-triage/diff")
    g("/api/v1/agents/invoice-triage/deployments")
    g("/api/v1/agents/nosuch")
    go(owner, "POST", "/api/v1/agents/invoice-triage/deploy", {"version": 1})
    go(owner, "POST", "/api/v1/agents/invoice-triage/deploy", {"version": 77})
    go(owner, "POST", "/api/v1/agents/invoice-triage/migrate", {"domain_version": 1})
    go(owner, "POST", "/api/v1/agents/invoice-triage/migrate", {"domain_version": 5})
    go(owner, "POST", "/api/v1/agents/invoice-triage/rollback", {"version": 1})
    go(owner, "POST", "/api/v1/agents/invoice-triage/rollback", {})
    go(owner, "POST", "/api/v1/agents", {"content": "kind: Agent\n"})
    go(owner, "POST", "/api/v1/agents", {"content": TRIAGE})
    go(owner, "POST", "/api/v1/domains", {"content": FINANCE})
    go(owner, "POST", "/api/v1/validate", {"content": "kind: Agent\n"})
    go(owner, "POST", "/api/v1/validate", {"content": TRIAGE})
    # runs
    r = go(owner, "POST", "/api/v1/runs", {"agent": "invoice-triage", "input": "Triage invoice INV-1001."})
    rid = r.json().get("id")
    print("run", r.status_code, r.json())
    go(owner, "POST", "/api/v1/runs", {"agent": "nosuch", "input": "x"})
    go(owner, "POST", "/api/v1/runs", {"agent": "invoice-triage"})
    g("/api/v1/runs")
    g(f"/api/v1/runs/{rid}")
    g(f"/api/v1/runs/{rid}/steps")
    g(f"/api/v1/runs/{rid}/approvals")
    go(owner, "POST", f"/api/v1/runs/{rid}/approve", {})
    go(owner, "POST", f"/api/v1/runs/{rid}/reject", {})
    go(owner, "POST", f"/api/v1/runs/{rid}/cancel")
    go(owner, "POST", f"/api/v1/runs/{rid}/cancel")
    g("/api/v1/runs/nope")
    # billing
    g("/api/v1/budgets")
    go(owner, "PUT", "/api/v1/budgets", {"monthly_cost_limit": "10.00"})
    go(owner, "PUT", "/api/v1/budgets", {"bogus": 1})
    g("/api/v1/usage/statement")
    g("/api/v1/usage/statement?month=2020-13")
    g("/api/v1/usage/statement?month=2024-01")
    # audit
    ev = g("/api/v1/audit/events").json()
    print("events", json.dumps(ev)[:600])
    seq = ev["events"][0]["seq"] if ev.get("events") else 1
    g(f"/api/v1/audit/events/{seq}")
    g("/api/v1/audit/events/999999")
    g("/api/v1/audit/events/abc")
    g("/api/v1/audit/verify")
    g("/api/v1/audit/checkpoints")
    g("/api/v1/audit/export")
    g("/api/v1/audit/export?since=bogus")
    g("/api/v1/audit/sinks")
    go(owner, "PUT", "/api/v1/audit/sinks/siem", {"kind": "syslog", "host": "siem.example.com"})
    g("/api/v1/audit/sinks/siem")
    go(owner, "PUT", "/api/v1/audit/sinks/siem", {"kind": "bogus"})
    go(owner, "DELETE", "/api/v1/audit/sinks/siem")
    go(owner, "DELETE", "/api/v1/audit/sinks/siem")
    # exports
    e = go(owner, "POST", "/api/v1/exports")
    go(owner, "POST", "/api/v1/exports")
    g("/api/v1/exports")
    eid = e.json().get("id")
    g(f"/api/v1/exports/{eid}")
    g("/api/v1/exports/nope")
    # retention
    g("/api/v1/retention")
    go(owner, "PUT", "/api/v1/retention", {"runs_days": 30})
    go(owner, "PUT", "/api/v1/retention", {"runs_days": -1})
    go(owner, "POST", "/api/v1/retention/preview")
    # providers
    g("/api/v1/providers")
    go(owner, "PUT", "/api/v1/providers/openai", {"api_key": "sk-test-abcdef123456"})
    g("/api/v1/providers/openai")
    g("/api/v1/providers/bogus")
    go(owner, "PUT", "/api/v1/providers/bogus", {"api_key": "x"})
    go(owner, "DELETE", "/api/v1/providers/openai")
    go(owner, "DELETE", "/api/v1/providers/openai")
    # sso
    g("/api/v1/sso")
    go(owner, "PUT", "/api/v1/sso", {"issuer": "not a url", "client_id": "x", "client_secret": "y"})
    go(owner, "DELETE", "/api/v1/sso")
    go(owner, "PUT", "/api/v1/sso", {})
    print("\n".join(found))
    assert not found
