"""Runtime fixtures: the example documents, manifests built from them, and local HTTP servers.

The runtime is pure Python: these tests need no database, Redis or Django request state.
"""

import copy
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from foundry.manifests import validate
from tests.stub_http import StubHTTPServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(autouse=True)
def _fresh_request_state():
    """Overrides the project-wide fixture: nothing here touches the database or the cache."""
    yield


def load(path: Path) -> dict:
    result = validate(path.read_text(), str(path))
    assert result.ok, [str(p) for p in result.problems]
    return result.data


@pytest.fixture(scope="session")
def finance() -> dict:
    return load(EXAMPLES / "domains" / "finance.yaml")


@pytest.fixture(scope="session")
def invoice_triage() -> dict:
    return load(EXAMPLES / "agents" / "invoice-triage.yaml")


def agent(base: dict, *, tools=None, approvals=None, limits=None, tests=None) -> dict:
    """A copy of `base` with parts of its spec replaced."""
    manifest = copy.deepcopy(base)
    spec = manifest["spec"]
    for key, value in (("tools", tools), ("approvals", approvals), ("limits", limits), ("tests", tests)):
        if value is not None:
            spec[key] = value
    return manifest


def pay_vendor(server, path: str = "/pay-vendor") -> dict:
    """`pay_vendor`: an http tool on the vendor entity (the finance rules on vendors apply to its
    calls) that POSTs to `server` at `path` (`{id}`: V-1), which answers that it paid."""
    server.routes[path.replace("{id}", "V-1")] = reply(body=b'{"paid": true}')
    return {
        "name": "pay_vendor",
        "type": "http",
        "entity": "vendor",
        "description": "Pay a vendor.",
        "method": "POST",
        "url": server.origin + path,
        "hosts": ["127.0.0.1"],
    }


def call(tool: str, **arguments) -> dict:
    return {"tool_call": {"tool": tool, "arguments": arguments}}


def respond(text: str) -> dict:
    return {"respond": text}


class Server:
    """A real HTTP server on a loopback address; `routes` maps a path to a handler function."""

    def __init__(self, host: str = "127.0.0.1"):
        self.requests: list[dict] = []
        self.routes: dict = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                server.requests.append(
                    {
                        "method": self.command,
                        "path": path,
                        "query": query,
                        "host": self.headers["host"],
                        "authorization": self.headers.get("authorization"),
                        "body": body,
                    }
                )
                route = server.routes.get(path)
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                route(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

        self.httpd = StubHTTPServer((host, 0), Handler)
        self.host, self.port = self.httpd.server_address[:2]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def reply(status: int = 200, body: bytes = b"", content_type: str = "application/json", headers=None):
    def handle(handler):
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    return handle


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def other_server():
    """A second server on 127.0.0.2 (another loopback address), to prove a refused hop never reached it."""
    s = Server("127.0.0.2")
    yield s
    s.close()


@pytest.fixture
def trickler() -> str:
    """The origin of a server that answers every request with a header trickled a byte every
    0.1 s, for 5 s (without a deadline for the whole exchange, a client waits that long)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Trickle: ")
                give_up = time.monotonic() + 5
                while not stop.wait(0.1) and time.monotonic() < give_up:
                    conn.sendall(b"a")

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()


def customer_lookup(server: "Server"):
    """A Toolbox of invoice-triage with one http tool, `lookup`, GET <server>/v1/customers (which
    answers {"found": true}) on loopback: its arguments travel as the query string."""
    from foundry.runtime.network import NetworkPolicy
    from foundry.runtime.tools import Toolbox, ToolOptions

    server.routes["/v1/customers"] = reply(body=b'{"found": true}')
    tool = {
        "name": "lookup",
        "type": "http",
        "description": "Customer lookup.",
        "url": server.origin + "/v1/customers",
        "hosts": ["127.0.0.1"],
    }
    manifest = agent(load(EXAMPLES / "agents" / "invoice-triage.yaml"), tools=[tool], approvals={})
    options = ToolOptions(network=NetworkPolicy(allow_private=True))
    return Toolbox(manifest, load(EXAMPLES / "domains" / "finance.yaml"), options)
