"""forge against a server answering what no Foundry server would (a proxy, a stub, a wrong URL):
one clear line and a non-zero exit, never "ok" and never an internal error."""

import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from tests.forge.conftest import Stub, forge, stub_serving
from tests.forge.test_hostile_server import _json, _version
from tests.stub_http import StubHTTPServer


class _Stub(BaseHTTPRequestHandler):
    answer: tuple[int, str, bytes] = (200, "application/json", b"{}")
    delay = 0.0

    def _do(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        time.sleep(self.delay)
        status, content_type, body = self.answer
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _do

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    server = StubHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# Commands that read the server's answers, each against a stub answering what no Foundry would.
COMMANDS = [
    ("pull", "agent:triage@1"),
    ("deploy", "domains/finance.yaml", "agents/triage.yaml"),
    ("diff", "domain:finance@1", "domain:finance@2"),
]


def _run(stub, workspace, answer, *args):
    _Stub.answer = answer
    return forge(*args, cwd=workspace, env={"FOUNDRY_URL": stub, "FOUNDRY_TOKEN": "af_t"})


@pytest.mark.parametrize("body", [b"[]", b'"x"'], ids=["list", "string"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_2xx_json_answer_that_is_not_an_object_is_said_plainly(stub, workspace, body, command):
    # client.py Client._body: a 2xx non-object JSON falls through to refusal(..., error=None) -> None.get
    ran = _run(stub, workspace, (200, "application/json", body), *command)
    assert ran.code == 2
    assert "Unexpected AttributeError" not in ran.err, ran.err
    assert "is this a Foundry tenant URL?" in ran.err, ran.err


def test_validate_with_a_server_answering_an_empty_object_is_not_ok(stub, workspace):
    ran = _run(stub, workspace, (200, "application/json", b"{}"), "validate", "--url", stub, "agents/triage.yaml")
    assert ran.code == 2 and "gave no verdict" in ran.err, (ran.out, ran.err)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_2xx_object_lacking_what_forge_needs_is_said_plainly(stub, workspace, command):
    ran = _run(stub, workspace, (200, "application/json", b'{"detail": "hello from a proxy"}'), *command)
    assert ran.code == 2, (ran.out, ran.err)
    assert "KeyError" not in ran.err and "internal_error" not in ran.err, ran.err
    assert "is this a Foundry tenant URL?" in ran.err and "without" in ran.err, ran.err


@pytest.mark.parametrize(
    "answer",
    [
        (200, "text/html", b"<html><body>Sign in</body></html>"),
        (200, "application/json", b'{"status": "ok"}'),
        (200, "text/event-stream", b'data: {"jsonrpc": "2.0", "id": "someone-else", "result": {}}\n\n'),
        (302, "text/html", b""),
    ],
    ids=["html", "json", "sse-other-id", "redirect"],
)
def test_forge_mcp_stops_when_the_url_does_not_answer_its_ping_as_mcp(stub, answer):
    # Before: any status below 400 passed the ping, and the bridge served a client it could not relay for.
    _Stub.answer = answer
    ran = forge("mcp", "--url", f"{stub}/mcp", "--token", "af_t")
    assert (ran.code, ran.out) == (2, ""), ran
    assert ran.err == (
        f"forge: error: {stub}/mcp answered {answer[0]} with {answer[1]} to a ping — is this a Foundry MCP URL?\n"
    )


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ((502, "text/html", b"<h1>Bad Gateway</h1>"), "failed (502"),
        ((503, "text/plain", b"upstream down"), "failed (503"),
        ((429, "text/html", b"<h1>Slow down</h1>"), "is rate limiting this token"),
    ],
    ids=["502-html", "503-text", "429-html"],
)
def test_a_proxys_own_fault_or_rate_limit_page_is_called_what_it_is(stub, workspace, answer, said):
    """A proxy in front of a real workspace answers these with a page of its own: the server
    failed or is rate limiting, not "is this a Foundry tenant URL?"."""
    ran = _run(stub, workspace, answer, "pull", "agent:triage@1")
    assert ran.code == 2
    assert said in ran.err and "is this a Foundry tenant URL?" not in ran.err, ran.err


class _Redirect(_Stub):
    def _do(self):
        self.send_response(301)
        self.send_header("Location", "https://elsewhere.example/api/v1/")
        self.send_header("Content-Type", "application/json")
        body = b'{"error": {"code": "not_found", "message": "moved"}}'
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _do


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_redirect_is_called_a_redirect_whatever_its_body_says(workspace, command):
    """forge does not follow redirects (its token is for the URL it was given). A 3xx with a
    Foundry-like error body was read as the server's refusal ("refused by the server: moved");
    now it is a redirect, named with where it points, and exit 2."""
    server = StubHTTPServer(("127.0.0.1", 0), _Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        ran = forge(*command, cwd=workspace, env={"FOUNDRY_URL": url, "FOUNDRY_TOKEN": "af_t"})
    finally:
        server.shutdown()
        server.server_close()
    assert ran.code == 2, (ran.out, ran.err)
    assert "refused" not in ran.err, ran.err
    assert "a redirect to https://elsewhere.example/api/v1/; forge does not follow redirects" in ran.err, ran.err


# --- answers with what forge reads, of another type ------------------------------------------


DEPLOY = ("deploy", "domains/finance.yaml", "agents/triage.yaml")
PUBLISHED = {
    ("POST", "/api/v1/domains"): _json(201, {"version": _version("domain", "finance"), "created": True}),
    ("POST", "/api/v1/agents"): _json(201, {"version": _version("agent", "triage"), "created": True}),
}

CASES = {
    # commands.py _publish_and_deploy: {**version} with version a string
    "deploy-version-not-object": (
        {("POST", "/api/v1/domains"): _json(201, {"version": "finance v1", "created": True})},
        DEPLOY,
    ),
    # commands.py deployed_line: (deployment.get("domain") or {}).get(...) with domain a string
    "deploy-deployment-domain-not-object": (
        {
            **PUBLISHED,
            ("POST", "/api/v1/agents/triage/deploy"): _json(
                201, {"agent": "triage", "version": 1, "domain": "finance"}
            ),
        },
        DEPLOY,
    ),
    # refs.py number_of: `ref.number > latest` with latest_number a string
    "diff-latest-number-not-number": (
        {("GET", "/api/v1/domains/finance"): _json(200, {"name": "finance", "latest_number": "3"})},
        ("diff", "domain:finance@1", "domain:finance@2"),
    ),
    # commands.py change_line: change.get(...) with a change that is a string
    "diff-changes-not-objects": (
        {
            ("GET", "/api/v1/domains/finance"): _json(200, {"name": "finance", "latest_number": 3}),
            ("GET", "/api/v1/domains/finance/diff"): _json(200, {"changes": ["entity added"], "text": "x"}),
        },
        ("diff", "domain:finance@1", "domain:finance@2"),
    ),
    # commands.py migrate_agent: deployment["domain"] with deployment a string
    "migrate-deployment-not-object": (
        {("POST", "/api/v1/agents/triage/migrate"): _json(200, {"deployment": "triage v2", "changed": True})},
        ("migrate", "triage"),
    ),
    # documents.py duplicates_flag: {(kind, name): ...} with name a list -> unhashable
    "validate-name-not-string": (
        {("POST", "/api/v1/validate"): _json(200, {"valid": True, "problems": [], "kind": "agent", "name": ["x"]})},
        ("validate", "--url", "{url}", "agents/triage.yaml"),
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_wrongly_typed_answer_is_unexpected_response_not_an_internal_error(workspace, case):
    """A key forge reads holding another type (a string for an object or a number, a list for a
    name) is `unexpected_response`, exit 2, naming the key (client.SHAPES); it was met later as a
    TypeError or AttributeError: `internal_error`."""
    routes, args = CASES[case]
    with stub_serving(routes=routes) as port:
        url = f"http://127.0.0.1:{port}"
        args = [a.format(url=url) for a in args]
        ran = forge("--json", *args, cwd=workspace, env={"FOUNDRY_URL": url, "FOUNDRY_TOKEN": "af_t"})
    assert ran.code == 2, ran
    assert "Unexpected" not in ran.err, ran.err
    assert ran.json["error"]["code"] == "unexpected_response", ran
    assert Stub.seen  # the stub was really asked
