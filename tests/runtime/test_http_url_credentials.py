"""A credential in an `http` tool's URL (`https://user:password@host/...`; validation refuses it
in a manifest, tests/manifests/test_validation.py, but one stored before, or a redirect's
Location, may hold one) never comes back in the tool's result: that result is what the model
provider (a third party) is sent, what the run timeline shows and what the checkpoints keep. The
platform strips a URL's user information from its traces too (foundry/telemetry.py)."""

import pytest

from foundry.runtime.network import NetworkPolicy
from foundry.runtime.tools import Toolbox, ToolError, ToolOptions
from tests.runtime.conftest import EXAMPLES, Server, agent, load, reply

PASSWORD = "s3cr3t-pass-0123456789"


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def test_http_tool_result_does_not_repeat_the_password_of_its_url(server):
    """The result's `url` names the address called without its user information (or the tool
    refuses a URL holding a credential); either way the password is in no text the model or the
    timeline receives."""
    server.routes["/v1/companies"] = reply(body=b"{}")
    url = server.origin.replace("http://", f"http://svc:{PASSWORD}@") + "/v1/companies"
    tool = {"name": "lookup", "type": "http", "description": "Lookup.", "url": url, "hosts": ["127.0.0.1"]}
    manifest = agent(load(EXAMPLES / "agents" / "invoice-triage.yaml"), tools=[tool], approvals={})
    toolbox = Toolbox(
        manifest, load(EXAMPLES / "domains" / "finance.yaml"), ToolOptions(network=NetworkPolicy(allow_private=True))
    )
    try:
        result = toolbox.run(toolbox.get("lookup"), {}, timeout=5)
    except ToolError as refused:
        result = f"{refused.code}: {refused.message}"
    assert PASSWORD not in result, result


def _toolbox(url: str) -> Toolbox:
    tool = {"name": "lookup", "type": "http", "description": "Lookup.", "url": url, "hosts": ["127.0.0.1"]}
    manifest = agent(load(EXAMPLES / "agents" / "invoice-triage.yaml"), tools=[tool], approvals={})
    return Toolbox(
        manifest, load(EXAMPLES / "domains" / "finance.yaml"), ToolOptions(network=NetworkPolicy(allow_private=True))
    )


def _said(toolbox: Toolbox, arguments: dict) -> str:
    try:
        return toolbox.run(toolbox.get("lookup"), arguments, timeout=5)
    except ToolError as refused:
        return f"{refused.code}: {refused.message}"


def test_a_stored_tool_url_made_too_long_is_not_quoted_with_its_password(server):
    """A tool URL stored with a credential whose argument makes it longer than a URL may be: the
    refusal quotes the URL without its user information (`network._quoted`; it quoted the password
    to the model, the timeline and checkpoints, found by a review)."""
    url = server.origin.replace("http://", f"http://svc:{PASSWORD}@") + "/v1/companies/{id}"
    said = _said(_toolbox(url), {"id": "x" * 70_000})
    assert "http_url_invalid" in said, said
    assert PASSWORD not in said, said
