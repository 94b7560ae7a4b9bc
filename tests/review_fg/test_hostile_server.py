"""forge against a hostile or compromised server: what it prints, how much it reads, how long it waits."""

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.forge.conftest import FORGE, forge, workspace  # noqa: F401

ESC = "\x1b]2;pwned\x07\x1b[2J\x1b[1A"  # set the window title, clear the screen, move the cursor


class _Routes(BaseHTTPRequestHandler):
    """Answers by (method, path): (status, body bytes) or a callable writing the answer itself."""

    routes: dict = {}
    protocol_version = "HTTP/1.1"

    def _do(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        answer = self.routes.get((self.command, self.path.split("?")[0]))
        if answer is None:
            answer = (404, json.dumps({"error": {"code": "not_found", "message": "no"}}).encode())
        if callable(answer):
            answer(self)
            return
        status, body = answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _do

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Routes)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _json(status: int, body) -> tuple[int, bytes]:
    return status, json.dumps(body).encode()


def _version(kind: str, name: str, number: int = 1) -> dict:
    return {
        "kind": kind,
        "name": name,
        "number": number,
        "digest": "x",
        "message": "",
        "created_at": "2024-01-01T00:00:00Z",
        "source": "a: 1\n",
        "content": {"a": 1},
    }


def _env(stub: str) -> dict:
    return {"FOUNDRY_URL": stub, "FOUNDRY_TOKEN": "af_t"}


# --- terminal escape sequences ---------------------------------------------------------------


def test_deploy_prints_a_servers_refusal_message_raw_to_the_terminal(stub, workspace):  # noqa: F811
    """commands.py _refused: `{where}: refused by the server: {exc.message} ({exc.code})` goes to
    stdout as the server wrote it. A hostile server's message can carry ESC sequences (retitle or
    clear the terminal, forge fake lines). Errors (Output.error) and problems (Problem.__str__)
    go through one_line(); this line should too — control characters shown escaped."""
    _Routes.routes = {
        ("POST", "/api/v1/domains"): _json(422, {"error": {"code": "bad" + ESC, "message": "refused" + ESC}}),
    }
    ran = forge("deploy", "domains/finance.yaml", "agents/triage.yaml", cwd=workspace, env=_env(stub))
    assert ran.code == 1, ran
    assert "refused by the server" in ran.out, ran.out
    assert "\x1b" not in ran.out + ran.err, repr(ran.out)


def test_deploy_prints_names_from_the_server_raw(stub, workspace):  # noqa: F811
    """commands.py _publish_and_deploy: the kind/name a server answers are printed unescaped in
    deploy's progress lines (`domain NAME vN (new)`): a server can put ESC sequences or a
    newline-forged line ("agent x v1 deployed") there. They should be shown with control
    characters escaped, as problems are."""
    evil = "finance" + ESC + "\nagent forged v9 deployed (pins finance v9)"
    domain = {**_version("domain", evil)}
    agent = {**_version("agent", "triage" + ESC)}
    _Routes.routes = {
        ("POST", "/api/v1/domains"): _json(201, {"version": domain, "created": True}),
        ("POST", "/api/v1/agents"): _json(201, {"version": agent, "created": True}),
        ("POST", f"/api/v1/agents/triage{ESC}/deploy"): _json(201, {"agent": "triage", "version": 1}),
    }
    ran = forge("deploy", "domains/finance.yaml", "agents/triage.yaml", cwd=workspace, env=_env(stub))
    assert "\x1b" not in ran.out and "agent forged v9" not in ran.out, repr(ran.out)


def test_validate_with_a_server_prints_its_kind_and_name_raw(stub, workspace):  # noqa: F811
    """`forge validate --url` prints `FILE: ok (KIND NAME)` with KIND and NAME as the server
    answered them (commands.py validate_documents): ESC sequences and newlines reach the
    terminal. They should be escaped like problems are (one_line)."""
    evil = "triage" + ESC + "\nforged.yaml: ok (agent forged)"
    _Routes.routes = {
        ("POST", "/api/v1/validate"): _json(200, {"valid": True, "problems": [], "kind": "agent", "name": evil}),
    }
    ran = forge("validate", "--url", stub, "agents/triage.yaml", cwd=workspace, env=_env(stub))
    assert ran.code == 0, ran
    assert "\x1b" not in ran.out and "forged.yaml: ok (agent forged)" not in ran.lines, repr(ran.out)


def test_pull_to_a_file_prints_the_servers_name_raw(stub, tmp_path):
    """`forge pull x@1 -o FILE` prints `wrote KIND NAME vN to FILE` with the server's name as sent:
    ESC sequences in it reach the terminal. The source goes to the file byte for byte (that is
    the promise); the status line about it should escape control characters."""
    _Routes.routes = {
        ("GET", "/api/v1/agents/triage"): _json(200, {"name": "triage", "latest_number": 1}),
        ("GET", "/api/v1/agents/triage/versions/1"): _json(200, _version("agent", "triage" + ESC)),
    }
    ran = forge("pull", "agent:triage@1", "-o", "out.yaml", cwd=tmp_path, env=_env(stub))
    assert ran.code == 0, ran
    assert "\x1b" not in ran.out, repr(ran.out)


# --- answers of the wrong shape --------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        (200, b"[" * 100_000),
        (200, b'{"valid": false, "problems": ["not an object"]}'),
        (200, b'{"valid": false, "problems": [{"code": "x", "line": "ten"}]}'),
    ],
    ids=["nested-json", "problem-not-object", "line-not-number"],
)
def test_odd_server_answers_are_internal_errors(stub, workspace, answer):  # noqa: F811
    """client.py Client._body only catches ValueError from response.json() (deep nesting raises
    RecursionError), and commands.py _problem assumes each problem is a dict with a numeric line:
    these answers end as `forge: error: Unexpected RecursionError/AttributeError/ValueError` —
    the internal-error path that tests/forge/test_unexpected_answers.py treats as a bug. They
    should be said plainly ("is this a Foundry tenant URL?")."""
    _Routes.routes = {("POST", "/api/v1/validate"): answer}
    ran = forge("validate", "--url", stub, "agents/triage.yaml", cwd=workspace, env=_env(stub))
    assert ran.code == 2, ran
    assert "Unexpected" not in ran.err, ran.err


# --- huge and endless answers ----------------------------------------------------------------


def _endless(handler):
    """200, then a body that never ends (a byte every 0.5 s)."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(10**9))
    handler.end_headers()
    try:
        handler.wfile.write(b"{")
        for _ in range(400):
            time.sleep(0.5)
            handler.wfile.write(b" ")
            handler.wfile.flush()
    except OSError:
        pass


def test_a_server_trickling_its_answer_holds_forge_forever(stub, tmp_path):
    """client.py TIMEOUT_SECONDS (30 s) is httpx's per-read timeout, not a bound on the exchange:
    a server sending a byte every half second keeps `forge pull` (in CI, say) waiting without
    end, though forge's message promises "did not answer within 30 s". The whole exchange
    should end at the timeout (exit 2, `timeout`)."""
    _Routes.routes = {("GET", "/api/v1/agents/triage"): _endless}
    started = time.monotonic()
    try:
        done = subprocess.run(
            [str(FORGE), "pull", "agent:triage@1", "--url", stub, "--token", "af_t"],
            capture_output=True,
            timeout=50,
            cwd=tmp_path,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"forge was still reading after {time.monotonic() - started:.0f} s")
    assert done.returncode == 2 and b"did not answer" in done.stderr, done


def _huge(handler):
    """200 with a 300 MB JSON body (whitespace around an object)."""
    size = 300 * 1024 * 1024
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(size))
    handler.end_headers()
    chunk = b" " * (1024 * 1024)
    try:
        for _ in range(size // len(chunk) - 1):
            handler.wfile.write(chunk)
        handler.wfile.write(b" " * (len(chunk) - 2) + b"{}")
    except OSError:
        pass


def test_a_huge_answer_is_read_whole_into_memory(stub, tmp_path):
    """client.py Client._send/_body: httpx reads the whole body, then json parses a decoded copy:
    no bound on what a server may send, so a hostile one exhausts forge's memory (hundreds of MB
    for a 300 MB answer). An answer past a sane limit (the API never sends more than a few MB:
    documents are at most 1 MB) should be refused with one line, reading no further."""
    _Routes.routes = {("GET", "/api/v1/agents/triage"): _huge}
    probe = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], capture_output=True, timeout=120)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(FORGE), "pull", "agent:triage@1", "--url", stub, "--token", "af_t"],
        capture_output=True,
        timeout=150,
        cwd=tmp_path,
    )
    peak_mb = int(done.stdout) / 1024
    assert peak_mb < 150, f"forge peaked at {peak_mb:.0f} MB reading one answer"
