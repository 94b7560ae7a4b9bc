"""An http tool's remote service is untrusted: nothing it answers ends a run on an internal error
(docs/runs.md, "Durability"). A JSON answer with an escaped lone surrogate (a service cutting an
emoji in half), or a text answer in a charset that decodes to one, reaches the model with U+FFFD
in its place (no model request can carry a lone surrogate); a redirect whose Location cannot be
parsed is the tool's error `http_url_invalid`."""

import ipaddress

import pytest
from django_tenants.utils import schema_context

from apps.runs.models import Run, Step
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy, http_tool
from tests.runs.test_api import client, post
from tests.runtime.conftest import Server, reply

SCRIPT = [{"tool_call": {"tool": "ledger", "arguments": {"id": "1"}}}, {"respond": "done"}]


def _run_clerk(acme, server, script=SCRIPT) -> Run:
    deploy(acme, FINANCE, agent_yaml(tools=http_tool(server.port, method="GET")))
    response = post(client(acme), "/api/v1/runs", {"agent": "clerk", "input": "Book.", "script": script})
    assert response.status_code == 201, response.content
    with schema_context("acme"):
        run = Run.objects.get(pk=response.json()["id"])
    return advance(run, "acme")


def _steps(run):
    with schema_context("acme"):
        return list(Step.objects.filter(run=run).values_list("index", "node", "status", "error"))


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"name": "x\\ud800y"}', "application/json"),
        (b"x\\ud800y", "text/plain; charset=unicode_escape"),
        (b"x+2AA-y", "text/plain; charset=utf-7"),
    ],
    ids=["json-escaped-surrogate", "unicode-escape-charset", "utf7-charset"],
)
def test_a_service_answer_with_a_lone_surrogate_does_not_end_the_run_on_an_internal_error(
    acme, loopback_allowed, body, content_type
):
    server = Server()
    server.routes["/entries/1"] = reply(body=body, content_type=content_type)
    try:
        run = _run_clerk(acme, server)
    finally:
        server.close()
    assert (run.status, run.reason) == ("succeeded", ""), (run.reason, run.message, _steps(run))


def test_a_service_answer_with_a_lone_surrogate_does_not_kill_an_openai_run(acme, settings, loopback_allowed):
    from apps.providers.services import credential_set
    from tests.providers.fake_models import FakeModelServer, Reply, openai_completion

    settings.FOUNDRY_PROVIDER_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    model, service = FakeModelServer(), Server()
    service.routes["/entries/1"] = reply(body=b'{"name": "x\\ud800y"}')
    try:
        owner = tenant_user(acme, "owner@acme.test")
        with schema_context("acme"):
            credential_set(
                actor=owner, provider="openai", api_key="sk-test-abcdef123456", base_url=f"{model.origin}/v1"
            )
        agent = deploy(acme, FINANCE, agent_yaml(provider="openai", tools=http_tool(service.port, method="GET")))
        model.queue(Reply(body=openai_completion(tool_calls=[("call_1", "ledger", {"id": "1"})])))
        model.queue(Reply(body=openai_completion("done")))
        with schema_context("acme"):
            run = run_start(actor=owner, agent=agent, input="Book.")
        run = advance(run, "acme")
    finally:
        service.close()
        model.close()
    assert (run.status, run.reason) == ("succeeded", ""), (run.reason, run.message)


def test_a_redirect_to_an_unparsable_location_is_a_tool_error_not_an_internal_error(acme, loopback_allowed):
    server = Server()
    server.routes["/entries/1"] = reply(status=302, headers={"Location": "http://[x/"})
    try:
        run = _run_clerk(acme, server)
    finally:
        server.close()
    assert (run.status, run.reason) == ("succeeded", ""), (run.reason, run.message, _steps(run))
    tool = [s for s in _steps(run) if s[1] == "tool"]
    assert [(status, error) for _, _, status, error in tool] == [("error", "http_url_invalid")]
