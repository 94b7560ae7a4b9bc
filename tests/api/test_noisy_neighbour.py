"""Noisy neighbour (issue 8): workspace A floods the API at ten times its rate from several
processes while workspace B's requests all succeed, at a p95 latency within 20% of B's baseline
measured in the same test, on a real server (gunicorn, `server_port`).
What is measured is isolation, not the server's capacity: A's rate is small, so its flood (10x)
is a small load; its requests are refused cheaply (once refused, a process answers 429 right
after host routing, before the token is looked up and without Redis until the refusal's wait is
over: foundry/api/access.py ApiRefusalMiddleware) and B spends its own buckets.

The baseline. On a 2-vCPU machine the flood's own processes share the CPUs with B's client and
the server, so any flood moves B's p95, whatever it floods: on 2026-12-02 the same flooders
aimed at a bystander server that shares nothing with the platform (a bare http.server in its own
process) moved B's p95 by 41-43% (and A's flood of the platform by 44-74%). B's baseline is
therefore the same flood — same processes, threads, rate and keep-alive connections — aimed at
the bystander: what is left above it is what serving A costs B, which is what tenant isolation
decides. On a machine where the flood's processes cost nothing that baseline is the idle one.
The idle p95 is measured too and reported.

Idle, bystander and loaded rounds alternate (in turns), so a slow moment of the machine falls on
every side rather than on one. `bin/dev test` runs this test after the rest of the suite, by
itself (marker `alone`). When 30 rounds leave the ratio above the bound, the test measures on,
up to 90 rounds, and judges all of them together: a flood that slows B keeps its ratio above the
bound however long it is measured, while a few unlucky rounds are outweighed.
"""

import http.client
import json
import statistics
import subprocess
import sys
import time

import pytest
from django.core.management import call_command

from apps.tenants.limits import limits_cache_clear
from apps.tenants.services import tenant_provision
from tests.api.conftest import issue
from tests.conftest import PASSWORD, ROOT, free_port, port_open_wait, server_env, server_process

PATH = "/api/v1/workspace"
A_RATE = 1  # requests per second, A's whole workspace
FLOOD = 10 * A_RATE  # what A sends, per second, in all
FLOODERS = 2  # processes, each with two threads
ROUNDS = 30  # at least; up to MAX_ROUNDS while the ratio is above the bound
MAX_ROUNDS = 90
BOUND = 1.2
SAMPLES = 25  # of B's requests, per round and side

# A flooder process: two threads, each with its own keep-alive connection to the platform and
# one to the bystander, sending at a steady rate while flooding ("flood" on stdin: the platform;
# "bystander": the bystander server; "pause" stops it) until stdin closes; then it prints how
# many answers of each status it had from the platform.
FLOODER = r"""
import collections, http.client, json, random, sys, threading, time
port, host, token, rate = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
bystander_port = int(sys.argv[5])
flooding, stop, counts, lock = threading.Event(), threading.Event(), collections.Counter(), threading.Lock()
target = {"port": port}
def flood():
    connections = {p: http.client.HTTPConnection("127.0.0.1", p, timeout=10) for p in (port, bystander_port)}
    headers = {"Host": host, "Authorization": f"Bearer {token}"}
    due = None
    while not stop.is_set():
        if not flooding.wait(0.05):
            due = None
            continue
        if due is None:
            due = time.monotonic() + random.uniform(0, 1 / rate)  # the threads spread out
        if stop.wait(max(due - time.monotonic(), 0)) or not flooding.is_set():
            continue
        due += 1 / rate
        to = target["port"]
        connection = connections[to]
        connection.request("GET", "/api/v1/workspace", headers=headers)
        response = connection.getresponse()
        response.read()
        if to == port:
            with lock:
                counts[response.status] += 1
threads = [threading.Thread(target=flood) for _ in range(2)]
for thread in threads:
    thread.start()
for line in sys.stdin:
    command = line.strip()
    if command == "pause":
        flooding.clear()
    else:
        target["port"] = port if command == "flood" else bystander_port
        flooding.set()
    print("ok", flush=True)
stop.set()
for thread in threads:
    thread.join()
print(json.dumps(counts), flush=True)
"""


# The bystander: a bare HTTP/1.1 server (keep-alive) in a process of its own, answering every
# request with a short 200 — what the flood costs the machine when it reaches nothing of ours.
BYSTANDER = r"""
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


@pytest.fixture(scope="module")
def bystander_port():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", BYSTANDER, str(port)])
    try:
        port_open_wait(port, process)
        yield port
    finally:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def server_port(django_db_setup):
    """gunicorn as deployed: two worker processes, so A's requests and B's are served side by side
    as on any production host, rather than all through one process's interpreter lock."""
    port = free_port()
    # Routes and limits cached per process for 2 s, as deployed (the test settings ask each time).
    env = server_env(
        FOUNDRY_BIND=f"127.0.0.1:{port}", FOUNDRY_WEB_WORKERS="2", FOUNDRY_ACCESS_LOG="0", FOUNDRY_TEST_ROUTE_TTL="2"
    )
    log = ROOT / "test-artifacts" / f"gunicorn-{port}.log"
    log.parent.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "gunicorn", "foundry.wsgi", "--config", "foundry/gunicorn.conf.py"]
    with server_process(command, port=port, env=env, log=log):
        yield port


@pytest.fixture(autouse=True)
def _limits_fresh():
    limits_cache_clear()
    yield
    limits_cache_clear()


class Client:
    """B: one keep-alive connection, as a well-behaved API client has."""

    def __init__(self, port: int, slug: str, token: str):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.headers = {"Host": f"{slug}.localhost", "Authorization": f"Bearer {token}"}

    def latencies(self, count: int) -> list[float]:
        seconds = []
        for _ in range(count):
            started = time.perf_counter()
            self.connection.request("GET", PATH, headers=self.headers)
            response = self.connection.getresponse()
            response.read()
            seconds.append(time.perf_counter() - started)
            assert response.status == 200, (response.status, response.headers)
        return seconds


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1]


class Flood:
    """A's flooder processes, started once and switched on and off between B's measurements."""

    def __init__(self, port: int, slug: str, token: str, bystander_port: int):
        args = [str(port), f"{slug}.localhost", token, str(FLOOD / FLOODERS / 2), str(bystander_port)]
        command = [sys.executable, "-c", FLOODER, *args]
        self.processes = [
            subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(FLOODERS)
        ]

    def switch(self, command: str) -> None:
        for process in self.processes:
            process.stdin.write(f"{command}\n".encode())
            process.stdin.flush()
        for process in self.processes:
            assert process.stdout.readline().strip() == b"ok"

    def stop(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for process in self.processes:
            out, _ = process.communicate(timeout=15)
            for status, count in json.loads(out).items():
                counts[int(status)] = counts.get(int(status), 0) + count
        return counts


@pytest.mark.alone
def test_a_tenant_flooding_at_ten_times_its_rate_does_not_slow_another(
    server_port, bystander_port, fresh_tenant, django_db_blocker
):
    with django_db_blocker.unblock():
        noisy = fresh_tenant
        quiet = tenant_provision(
            slug=f"q{noisy.slug[1:]}", name="Quiet Co", owner_email="owner@quiet.test", owner_password=PASSWORD
        ).tenant
        call_command("tenant_limits", noisy.slug, "--requests-per-second", str(A_RATE), "--burst", str(A_RATE))
        noisy_token, quiet_token = issue(noisy), issue(quiet)
    quiet_client = Client(server_port, quiet.slug, quiet_token)
    quiet_client.latencies(30)  # warm: connections, caches, the server's code paths

    sides: dict[str, list[float]] = {"idle": [], "bystander": [], "flood": []}
    flooding = 0.0
    flood = Flood(server_port, noisy.slug, noisy_token, bystander_port)
    try:
        round_ = 0
        while round_ < ROUNDS or (round_ < MAX_ROUNDS and p95(sides["flood"]) / p95(sides["bystander"]) > BOUND):
            # Each side goes first, second and third in turn: whatever comes of the order (a
            # switch just made, a warmer cache) falls on every side alike.
            order = list(sides)[round_ % 3 :] + list(sides)[: round_ % 3]
            for side in order:
                if side == "idle":
                    sides[side] += quiet_client.latencies(SAMPLES)
                    continue
                flood.switch(side)
                started = time.monotonic()
                time.sleep(0.05)  # the flood under way
                sides[side] += quiet_client.latencies(SAMPLES)
                flood.switch("pause")
                if side == "flood":
                    flooding += time.monotonic() - started
            round_ += 1
    finally:
        counts = flood.stop()

    # A sent about ten times its rate, and the limiter refused all but its rate.
    sent = sum(counts.values())
    assert set(counts) <= {200, 429}, counts
    assert sent >= 0.7 * FLOOD * flooding, (counts, flooding)
    assert counts[429] >= 0.7 * sent, counts

    # B: every request succeeded (Client.latencies asserts each), and, at the 95th percentile, no
    # slower while A floods the platform than while the same flood goes to the bystander.
    assert all(len(samples) == round_ * SAMPLES for samples in sides.values())
    idle, bystander, loaded = (p95(sides[side]) for side in ("idle", "bystander", "flood"))
    ratio = loaded / bystander
    assert ratio <= BOUND, (
        f"B's p95 {loaded * 1e3:.2f} ms while A floods the platform vs {bystander * 1e3:.2f} ms while the same "
        f"flood goes to a bystander ({ratio:.2f}x; idle {idle * 1e3:.2f} ms; {round_} rounds)"
    )
