"""forge deploy that stops part way on something other than a 4xx refusal (a server fault, a
rate limit, an answer cut off): it says where it stopped and what was already published."""

import json

import pytest

from tests.forge.conftest import forge, stub_serving, workspace  # noqa: F401


def _json(status: int, body) -> tuple[int, bytes]:
    return status, json.dumps(body).encode()


def _version(kind: str, name: str, number: int = 1) -> dict:
    return {"kind": kind, "name": name, "number": number, "digest": "x", "message": "", "created_at": "x"}


HTML_FAULT = (502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", {"Content-Type": "text/html"})
RATE_LIMITED = (429, b'{"error": {"code": "rate_limited", "message": "Too many requests."}}', {"Retry-After": "60"})


def _dropped(handler):
    handler.send_response(201)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "500")
    handler.end_headers()
    handler.wfile.write(b'{"version": {"kind": "agent", "na')
    handler.close_connection = True


PUBLISHED_DOMAIN = {
    ("POST", "/api/v1/domains"): _json(201, {"version": _version("domain", "finance"), "created": True}),
}
FAULTS = {
    "agent-publish-502-html": {("POST", "/api/v1/agents"): HTML_FAULT},
    "agent-publish-500-json": {
        ("POST", "/api/v1/agents"): _json(500, {"error": {"code": "internal_error", "message": "boom"}})
    },
    "agent-publish-429-retry-60": {("POST", "/api/v1/agents"): RATE_LIMITED},
    "agent-publish-answer-cut-off": {("POST", "/api/v1/agents"): _dropped},
    "agent-deploy-503-json": {
        ("POST", "/api/v1/agents"): _json(201, {"version": _version("agent", "triage"), "created": True}),
        ("POST", "/api/v1/agents/triage/deploy"): _json(503, {"error": {"code": "unavailable", "message": "later"}}),
    },
}


def _deploy(folder, port: int, *flags: str):
    """`forge [flags] deploy` of the finance domain and the triage agent against the stub on `port`."""
    env = {"FOUNDRY_URL": f"http://127.0.0.1:{port}", "FOUNDRY_TOKEN": "af_t"}
    return forge(*flags, "deploy", "domains/finance.yaml", "agents/triage.yaml", cwd=folder, env=env)


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_deploy_json_that_fails_midway_on_a_server_fault_lists_what_was_published(workspace, fault):  # noqa: F811
    """Under --json, the deploy report (`published`, `deployments`, `ok: false`, `error`) is the
    document printed, as for a refusal, so a CI job reads that domain finance v1 went out; the
    exit code stays 2."""
    with stub_serving(routes={**PUBLISHED_DOMAIN, **FAULTS[fault]}) as port:
        ran = _deploy(workspace, port, "--json")
    assert ran.code == 2, (ran.code, ran.out, ran.err)
    body = ran.json
    published = [(v["kind"], v["name"], v["number"]) for v in body.get("published", [])]
    assert published[:1] == [("domain", "finance", 1)] and body["ok"] is False and body["error"]["code"], body


def test_deploy_that_fails_midway_on_a_server_fault_says_what_was_already_published(workspace):  # noqa: F811
    """As a refusal does, a server fault names the file it stopped at and ends with "Already
    published: domain finance v1." (docs/forge.md, exit codes)."""
    with stub_serving(routes={**PUBLISHED_DOMAIN, **FAULTS["agent-publish-502-html"]}) as port:
        ran = _deploy(workspace, port)
    assert ran.code == 2, (ran.code, ran.out, ran.err)
    said = ran.out + ran.err
    assert "agents/triage.yaml" in said and "Already published: domain finance v1." in said, (ran.out, ran.err)


def test_an_answer_cut_off_is_not_called_unreachable(workspace):  # noqa: F811
    """The server answered and the answer broke off: what was asked may have been done, so the
    error says the answer was cut off, not that the server could not be reached."""
    with stub_serving(routes={**PUBLISHED_DOMAIN, **FAULTS["agent-publish-answer-cut-off"]}) as port:
        ran = _deploy(workspace, port)
    assert ran.code == 2, (ran.code, ran.out, ran.err)
    said = ran.out + ran.err
    assert f"http://127.0.0.1:{port} answered, but the answer was cut off" in said, said
    assert "Cannot reach" not in said, said
