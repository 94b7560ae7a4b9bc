"""An http tool's error that quotes a URL it could not read quotes it without its user
information (foundry/runtime/network.py `_quoted`): a stored tool URL `http://svc:<password>@…`
made too long by the model's argument came back as `'http://svc:<password>@…' is not a valid
URL.`, the tool error the model provider (a third party) is sent, the run timeline shows and the
checkpoints keep (found by a review). test_http_url_credentials.py states the rule for valid
URLs: a URL's credential never comes back in the tool's result."""

import pytest

from foundry.runtime.network import NetworkPolicy
from foundry.runtime.tools import Toolbox, ToolError, ToolOptions
from tests.runtime.conftest import EXAMPLES, Server, agent, load

PASSWORD = "s3cr3t-pass-0123456789"


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


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
    """A tool URL stored with a credential (validation refuses new ones) whose argument makes it
    longer than a URL may be: the refusal should not quote the URL's password."""
    url = server.origin.replace("http://", f"http://svc:{PASSWORD}@") + "/v1/companies/{id}"
    said = _said(_toolbox(url), {"id": "x" * 70_000})
    assert "http_url_invalid" in said, said
    assert PASSWORD not in said, said
