"""How forge's HTTP client turns answers into errors: a stub server for the console script, and
httpx's MockTransport for the rest (no Foundry server needed)."""

import json
import threading
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from foundry.forge import __version__
from foundry.forge.client import Client, base_url
from foundry.forge.errors import ApiError, ForgeError
from tests.forge.conftest import forge
from tests.stub_http import StubHTTPServer


class _Stub(BaseHTTPRequestHandler):
    answer: tuple[int, str, bytes] = (500, "application/json", b"{}")
    seen: list = []

    def do_GET(self):
        self.seen.append((self.path, dict(self.headers)))
        status, content_type, body = self.answer
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    server = StubHTTPServer(("127.0.0.1", 0), _Stub)
    _Stub.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_server_fault_is_exit_2_with_one_line(stub):
    _Stub.answer = (
        500,
        "application/json",
        json.dumps({"error": {"code": "server_error", "message": "Boom."}}).encode(),
    )
    url = f"http://stub.localhost:{stub.server_port}"
    ran = forge("pull", "finance@1", "--url", url, "--token", "af_t")
    assert (ran.code, ran.out) == (2, "")
    assert ran.err == f"forge: error: {url} failed (500 server_error): Boom.\n"
    path, headers = _Stub.seen[0]
    assert path == "/api/v1/agents/finance"
    assert headers["User-Agent"] == f"forge/{__version__}"
    assert headers["Authorization"] == "Bearer af_t"
    assert headers["Host"] == f"stub.localhost:{stub.server_port}"  # reached over loopback, named as given


def test_a_server_that_is_not_foundry_is_exit_2(stub):
    _Stub.answer = (404, "text/html", b"<h1>Not Found</h1>")
    ran = forge("pull", "finance@1", "--url", f"http://127.0.0.1:{stub.server_port}", "--token", "t")
    assert ran.code == 2
    assert ran.err == (
        f"forge: error: http://127.0.0.1:{stub.server_port} answered 404 with text/html to GET /api/v1/agents/finance"
        " — is this a Foundry tenant URL?\n"
    )


def _client(handler) -> Client:
    return Client("http://acme.localhost:8000/", "af_token", transport=httpx.MockTransport(handler))


def _error(status: int, code: str, message: str, **extra) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message, **extra}})


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (401, "unauthenticated", "http://acme.localhost:8000 refused the token: Invalid token."),
        (403, "permission_denied", "http://acme.localhost:8000 refused: Invalid token."),
        (502, "server_error", "http://acme.localhost:8000 failed (502 x): Invalid token."),
    ],
)
def test_refusals_and_faults_stop_the_command(status, code, message):
    with pytest.raises(ForgeError) as caught:
        _client(lambda request: _error(status, "x", "Invalid token.")).document("domain", "finance")
    assert (caught.value.code, caught.value.message, caught.value.exit_code) == (code, message, 2)


def test_other_client_errors_are_left_to_the_command():
    details = [{"code": "dis_not_found", "message": "No.", "file": "a.yaml", "line": 3, "column": 5}]
    client = _client(lambda request: _error(422, "document_invalid", "The document has problems.", details=details))
    with pytest.raises(ApiError) as caught:
        client.publish("agent", "kind: Agent", "a.yaml", None)
    assert (caught.value.status, caught.value.code, caught.value.details) == (422, "document_invalid", details)


def test_it_waits_out_a_short_rate_limit():
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "0"}, json={"error": {"code": "rate_limited"}}),
            httpx.Response(200, json={"kind": "domain", "name": "finance", "latest_number": 2}),
        ]
    )
    assert _client(lambda request: next(answers)).document("domain", "finance")["latest_number"] == 2


def test_it_reaches_localhost_names_over_loopback():
    seen = []
    _client(lambda request: seen.append(request) or httpx.Response(200, json={"latest_number": 1})).document(
        "agent", "triage"
    )
    assert str(seen[0].url) == "http://127.0.0.1:8000/api/v1/agents/triage"
    assert seen[0].headers["host"] == "acme.localhost:8000"


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("https://acme.example.com", "https://acme.example.com"),
        ("https://acme.example.com/", "https://acme.example.com"),
        ("https://acme.example.com/api/v1/", "https://acme.example.com"),
        ("http://acme.localhost:8000/foundry", "http://acme.localhost:8000/foundry"),
    ],
)
def test_the_url_is_the_server_root(given, root):
    assert base_url(given) == root


@pytest.mark.parametrize("given", ["acme.example.com", "ftp://acme.example.com", "https://", "https://a.b/?x=1"])
def test_a_url_that_is_not_one_is_refused(given):
    with pytest.raises(ForgeError) as caught:
        base_url(given)
    assert caught.value.code == "url_invalid"


@pytest.mark.parametrize(
    "given",
    [
        "https://ci:Sup3rSecret/word@acme.example.com",  # the slash ends the host: port "Sup3rSecret"
        "ci:Sup3rSecret/word@acme.example.com",  # no "//": a scheme "ci", then a path
        "http://ci:Sup3rSecret/word@acme.example.com",
    ],
)
def test_a_refused_url_is_not_repeated_with_what_may_be_a_password(given):
    """A password holding a `/` moves the URL's `@` out of its host part, so no parser sees a user
    name: the error says what is wrong without quoting what came before the `@`."""
    with pytest.raises(ForgeError) as caught:
        base_url(given)
    assert caught.value.code in ("url_invalid", "url_insecure")
    assert "Sup3r" not in caught.value.message, caught.value.message
