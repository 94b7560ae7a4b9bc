"""`forge` on a developer's machine: the environment it runs in (proxies) and what a hostile or
broken server's answer may cost it (memory, time). Real `forge` console script, stub servers.
Review findings, fixed: answers of millions of small objects (4 GiB to parse 28 MiB), `forge mcp`
holding answers of any size, and the environment's proxies ignored."""

import os
import socket
import subprocess
import sys
import threading

import pytest

from tests.forge.conftest import FORGE, Stub, stub_serving

# Runs a command and prints the peak RSS (KiB) of it alone, as the last line of stderr.
_MEASURED = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL)
sys.stderr.write("\\nMAXRSS %d\\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(done.returncode)
"""


def _env(**extra) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FOUNDRY_") and "proxy" not in k.lower()}
    return {**clean, "FOUNDRY_TOKEN": "af_t", **extra}


def _measured(*args: str, timeout: float = 240) -> tuple[int, str, float]:
    """(exit code, stderr, peak RSS in MiB) of `forge ARGS...`."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED, str(FORGE), *args], env=_env(), capture_output=True, timeout=timeout
    )
    err = done.stderr.decode()
    rss = int(err.rsplit("MAXRSS ", 1)[1].split()[0]) / 1024
    return done.returncode, err, rss


def _answer(status: int, body: bytes, *, length: int | None = None):
    def write(handler):
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body) if length is None else length))
        handler.end_headers()
        try:
            if length is None:
                handler.wfile.write(body)
            else:
                chunk = b" " * (1024 * 1024)
                for _ in range(length // len(chunk)):
                    handler.wfile.write(chunk)
        except OSError:  # forge hung up, as it may
            pass

    return write


def test_an_answer_of_many_small_objects_within_the_size_limit_does_not_take_gigabytes():
    """An answer under the 32 MiB cap made of millions of `{}` took `forge pull` to 4.3 GiB and
    66 s (each object parsed into an `Answer`). Now: more than MAX_ANSWER_OBJECTS objects is
    `response_too_large` before parsing; here 2 million (5.7 MiB) are refused well within memory."""
    body = b"[" + b"{}," * 2_000_000 + b"{}]"
    with stub_serving() as port:
        Stub.routes = {("GET", "/api/v1/agents/triage"): _answer(200, body)}
        code, err, rss = _measured("pull", "agent:triage@1", "--url", f"http://127.0.0.1:{port}")
    assert code == 2, err
    assert "Traceback" not in err, err
    assert rss < 400, f"forge pull peaked at {rss:.0f} MiB for a {len(body) / 2**20:.1f} MiB answer"


@pytest.mark.parametrize("status", [200, 500])
def test_forge_mcp_does_not_hold_a_huge_answer_in_memory(status):
    """docs/forge.md: what a server answers is bounded, at most 32 MiB (`response_too_large`).
    `forge mcp` read its ping's answer, and every answer of 400 or more, whole (300 MiB: ~1 GiB of
    memory). Now an answer announced or counted past 32 MiB is refused before it is held, exit 2."""
    with stub_serving() as port:
        Stub.routes = {("POST", "/mcp"): _answer(status, b"", length=300 * 1024 * 1024)}
        code, err, rss = _measured("mcp", "--url", f"http://127.0.0.1:{port}/mcp")
    assert code == 2, err
    assert rss < 250, f"forge mcp peaked at {rss:.0f} MiB reading a 300 MiB answer"


class _Proxy:
    """A stand-in HTTP proxy: records the first line of each request (`CONNECT host:443 ...`)
    and answers 502, so nothing goes further."""

    def __init__(self):
        self.seen: list[bytes] = []
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            with connection:
                self.seen.append(connection.recv(4096).split(b"\r\n")[0])
                connection.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def close(self):
        self._socket.close()


@pytest.mark.parametrize(
    "args",
    [
        ["pull", "agent:triage@1", "--url", "https://acme.foundry.invalid"],
        ["mcp", "--url", "https://acme.foundry.invalid/mcp"],
    ],
    ids=["rest", "mcp"],
)
def test_forge_goes_through_the_proxy_the_environment_names(args):
    """A developer behind a corporate proxy sets HTTPS_PROXY (as curl, pip and git honour it).
    forge gave httpx its own transport, which takes no proxy from the environment, so it connected
    directly. Now HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY are honoured (loopback and
    *.localhost hosts never proxied)."""
    proxy = _Proxy()
    try:
        done = subprocess.run(
            [str(FORGE), *args], input=b"", env=_env(HTTPS_PROXY=proxy.url), capture_output=True, timeout=60
        )
    finally:
        proxy.close()
    assert done.returncode == 2, done.stderr.decode()
    assert any(line.startswith(b"CONNECT acme.foundry.invalid:443") for line in proxy.seen), (
        proxy.seen,
        done.stderr.decode(),
    )


def test_no_proxy_and_loopback_hosts_go_direct():
    """NO_PROXY names the host: no CONNECT reaches the proxy; a *.localhost URL never goes through it."""
    import httpx

    from foundry.forge.client import proxy_for

    proxy = _Proxy()
    try:
        env = {"HTTPS_PROXY": proxy.url, "NO_PROXY": "acme.foundry.invalid"}
        subprocess.run(
            [str(FORGE), "pull", "agent:triage@1", "--url", "https://acme.foundry.invalid"],
            input=b"", env=_env(**env), capture_output=True, timeout=60,
        )  # fmt: skip
    finally:
        proxy.close()
    assert proxy.seen == []
    saved = {k: os.environ.get(k) for k in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "no_proxy")}
    try:
        os.environ.update({"HTTPS_PROXY": "http://proxy.example:3128", "HTTP_PROXY": "http://proxy.example:3128"})
        os.environ.pop("NO_PROXY", None), os.environ.pop("no_proxy", None)
        assert proxy_for(httpx.URL("https://acme.example.com/")) == "http://proxy.example:3128"
        assert proxy_for(httpx.URL("http://acme.localhost:8000/")) is None
        assert proxy_for(httpx.URL("http://127.0.0.1:8000/")) is None
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
