"""Run the real installed `forge` console script, offline or against the live test server."""

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
from django_tenants.utils import schema_context

from apps.tenants.models import Tenant
from apps.tokens.services import token_issue
from tests.conftest import ROOT
from tests.stub_http import StubHTTPServer

FORGE = Path(sys.executable).parent / "forge"
EXAMPLES = ROOT / "examples"

# Documents of the tests' own (examples/ may grow; exact lines and columns here must not move).
FINANCE = """\
apiVersion: foundry/v1
kind: Domain
metadata:
  name: finance
spec:
  entities:
    invoice:
      key: id
      fields:
        id: {type: string, required: true}
        amount: {type: decimal}
        received_on: {type: date}
  rules:
    - name: large-invoice
      entity: invoice
      when: amount > 10000
      then: require_approval
  glossary:
    AP: Accounts payable.
"""
TRIAGE = """\
apiVersion: foundry/v1
kind: Agent
metadata:
  name: triage
  project: payables
spec:
  domain:
    name: finance
    version: 1
  model:
    provider: scripted
    name: scripted-1
  instructions: Triage invoices.
  tools:
    - name: find_invoices
      type: dis_query
      entity: invoice
      description: Find invoices.
  tests:
    - name: finds-the-invoice
      input: Triage invoice INV-1.
      script:
        - tool_call: {tool: find_invoices, arguments: {filter: 'id = "INV-1"'}}
        - respond: INV-1 can be approved.
      expect:
        tools_called: [find_invoices]
        output_contains: [can be approved]
"""


@dataclass
class Ran:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    @property
    def json(self):
        return json.loads(self.out)


def forge(*args: str, cwd: Path | None = None, env: dict | None = None) -> Ran:
    """`forge ARGS...` as a user runs it; no FOUNDRY_* leaks in from the environment running the tests."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FOUNDRY_")}
    done = subprocess.run(
        [str(FORGE), *args], cwd=cwd or ROOT, env={**clean, **(env or {})}, capture_output=True, timeout=60
    )
    ran = Ran(done.returncode, done.stdout.decode(), done.stderr.decode())  # bytes kept: no newline translation
    assert "Traceback" not in ran.err, ran.err
    return ran


@pytest.fixture
def workspace(tmp_path) -> Path:
    """domains/finance.yaml and agents/triage.yaml in a folder of their own, the working directory
    of the commands run in it (so paths in messages are short and relative)."""
    (tmp_path / "domains").mkdir()
    (tmp_path / "agents").mkdir()
    (tmp_path / "domains/finance.yaml").write_text(FINANCE)
    (tmp_path / "agents/triage.yaml").write_text(TRIAGE)
    return tmp_path


def example_files() -> list[str]:
    """The example documents as `forge validate examples/` lists them."""
    return sorted(str(p.relative_to(ROOT)) for p in EXAMPLES.rglob("*.y*ml"))


def token_for(tenant: Tenant, django_db_blocker, *, role: str = "admin", scopes=("read", "write")) -> str:
    """A committed API token (the live server runs in another process)."""
    with django_db_blocker.unblock(), schema_context(tenant.schema_name):
        return token_issue(actor="forge tests", name="forge", role=role, scopes=list(scopes)).plaintext


@dataclass
class Server:
    url: str
    token: str
    tenant: Tenant

    def forge(self, *args: str, cwd: Path | None = None) -> Ran:
        return forge(*args, cwd=cwd, env={"FOUNDRY_URL": self.url, "FOUNDRY_TOKEN": self.token})

    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        """Straight to the API, not through forge: to set up, and to see what the server holds."""
        host = self.url.removeprefix("http://")
        return httpx.request(
            method,
            f"http://127.0.0.1:{host.rsplit(':', 1)[1]}/api/v1/{path}",
            headers={"Host": host, "Authorization": f"Bearer {self.token}"},
            **kwargs,
        )

    def publish(self, kind: str, content: str) -> dict:
        response = self.api("POST", f"{kind}s", json={"content": content})
        assert response.status_code in (200, 201), response.text
        return response.json()["version"]


@pytest.fixture
def server(live_port, fresh_tenant, django_db_blocker) -> Server:
    """A tenant of its own on the live server, addressed by its host name, with an admin token."""
    url = f"http://{fresh_tenant.slug}.localhost:{live_port}"
    return Server(url, token_for(fresh_tenant, django_db_blocker), fresh_tenant)


class Stub(BaseHTTPRequestHandler):
    """A stand-in for what forge talks to (a hostile server, another machine): answers by (method,
    path) with (status, body bytes[, headers]: JSON unless they name another Content-Type) or a
    callable writing the answer itself, `otherwise` for any other; records (method, path,
    Authorization) of every request in `seen`."""

    routes: dict = {}
    otherwise = (404, b'{"error": {"code": "not_found", "message": "no"}}')
    seen: list = []
    protocol_version = "HTTP/1.1"

    def _do(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.seen.append((self.command, self.path, self.headers.get("Authorization")))
        answer = self.routes.get((self.command, self.path.split("?")[0]), self.otherwise)
        if callable(answer):
            answer(self)
            return
        status, body, *extra = answer
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(extra[0] if extra else {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _do

    def log_message(self, *args):
        pass


@contextmanager
def stub_serving(address: str = "127.0.0.1", **answers) -> Iterator[int]:
    """`Stub` listening on `address` (its `routes`, `otherwise` as given; `seen` emptied): its port."""
    Stub.routes, Stub.seen = answers.get("routes", {}), []
    Stub.otherwise = answers.get("otherwise", (404, b'{"error": {"code": "not_found", "message": "no"}}'))
    httpd = StubHTTPServer((address, 0), Stub)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
