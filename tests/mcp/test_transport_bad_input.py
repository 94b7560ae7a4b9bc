"""/mcp must answer any body with a 4xx/JSON-RPC error, never a 500 (PRODUCT.md: "no 500 on any input";
docs/mcp.md: a body that is not a JSON-RPC message is a 400 with a JSON-RPC error).

The defect is before any database access (the gateway peeks at the body first), so this module runs
its own uvicorn on foundry.asgi and needs no workspace."""

import socket
import subprocess
import sys
import time

import httpx2
import pytest

from tests.conftest import ROOT, free_port, server_env


@pytest.fixture(scope="module")
def port():
    port = free_port()
    log = (ROOT / "test-artifacts" / f"review-mcp2-uvicorn-{port}.log").open("wb")
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "foundry.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "on",
        "--no-access-log",
    ]
    proc = subprocess.Popen(command, env=server_env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("uvicorn did not start") from None
            time.sleep(0.2)
    yield port
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 50_000], ids=["deep_array", "deep_object"])
def test_a_deeply_nested_json_body_is_not_a_500(port, body):
    # foundry/mcp/gateway.py _body_peek: json.loads raises RecursionError, only ValueError is caught.
    response = httpx2.post(
        f"http://127.0.0.1:{port}/mcp",
        content=body,
        headers={
            "Host": f"acme.localhost:{port}",
            "Authorization": "Bearer af_000000000000_x",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        },
        timeout=30,
    )
    assert response.status_code < 500, (response.status_code, response.text[:200])
