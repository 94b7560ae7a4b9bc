"""What an MCP tool call costs over Streamable HTTP, beside the REST call that lists the same agents.

Creates its own database with one tenant (the finance example domain and --agents copies of the
invoice-triage example agent, published and deployed) and a developer API token with the read
scope, then serves the platform on loopback two ways, one process each:

- uvicorn serving foundry.asgi:application (Django for every path, the MCP SDK's stateless
  Streamable HTTP app at /mcp), uvloop + httptools, one worker;
- gunicorn serving foundry.wsgi with foundry/gunicorn.conf.py (gthread), one worker.

It then times, from one client process, one call at a time (each client keeps its connection
alive), in interleaved rounds whose order rotates so that the machine's noise falls on every
line alike:

- `list_agents` through the MCP SDK's client (`mcp.Client` on `streamable_http_client`): one
  initialized session, the tool called again and again — what an agent host does;
- the same `tools/call` as a bare JSON-RPC POST with a plain HTTP client (no SDK on the client
  side): what the server alone costs;
- GET /api/v1/agents on the ASGI server (the same sync Django view under ASGI);
- GET /api/v1/agents on gunicorn (the REST call as production serves it).

Each line: calls per second (median of the rounds), p50 and p99 latency (all calls), its ratio
to the REST call on gunicorn and on the ASGI server, and the PostgreSQL sessions the servers
opened per call (pg_stat_database, counted over a further batch of calls per line): a server
that connects anew for every request pays the connection set-up in every call.

    bin/dev bench bench/mcp.py [--rounds 12] [--calls 40] [--agents 5] [--settings MODULE]

--settings runs both servers with another settings module (e.g. one that turns on psycopg's
connection pool), to compare.

Targets: MCP `list_agents` through the SDK p50 ≤ 15 ms on loopback, and ≤ 2x the REST call
(GET /api/v1/agents on gunicorn, as deployed; the ratio to the same view under ASGI is printed
beside it). Exits 1 if one is missed. Uses its own database, foundry_bench_mcp, dropped at the
end. Takes ~1-2 minutes. docs/operations/serving.md records a run and the deployment chosen.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

# Run as a script, Python puts bench/ first on the path, where this file would shadow the `mcp`
# package it measures: the project root takes its place.
if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench._support import ROOT, bench_database, free_port, serve, stop, verdict

SLUG = "bench"
OWNER = "owner@bench.test"
FINANCE = ROOT / "examples" / "domains" / "finance.yaml"
AGENT = ROOT / "examples" / "agents" / "invoice-triage.yaml"
REST_PATH = "/api/v1/agents"
MCP_PATH = "/mcp"
MAX_P50_MS = 15.0
MAX_REST_RATIO = 2.0
SESSION_SETTLE = 1.5  # seconds: PostgreSQL's backends report their statistics at most once a second


# --- setup ------------------------------------------------------------------------------------


def setup(agents: int) -> str:
    """Provision the tenant, publish and deploy its agents; the plaintext of a read-only token."""
    from django_tenants.utils import schema_context

    from apps.accounts.models import User
    from apps.catalog.services import agent_deploy, version_publish
    from apps.tenants.services import tenant_provision
    from apps.tokens.services import token_issue

    tenant = tenant_provision(slug=SLUG, name="Bench", owner_email=OWNER).tenant
    source = AGENT.read_text()
    if "name: invoice-triage\n" not in source:
        sys.exit(f"{AGENT} no longer names its agent `invoice-triage`: update bench/mcp.py")
    with schema_context(tenant.schema_name):
        owner = User.objects.get(email=OWNER)
        version_publish(actor=owner, source=FINANCE.read_text(), message="bench")
        for n in range(1, agents + 1):
            named = source.replace("name: invoice-triage\n", f"name: invoice-triage-{n}\n", 1)
            version = version_publish(actor=owner, source=named, message="bench").version
            agent_deploy(actor=owner, document=version.document, number=version.number)
        return token_issue(actor="bench", name="bench", role="developer", scopes=["read"]).plaintext


def servers(env: dict[str, str], settings: str) -> tuple[dict[str, int], list]:
    """Start uvicorn (ASGI) and gunicorn (WSGI), one worker each; their ports and processes."""
    asgi_port, wsgi_port = free_port(), free_port()
    server_env = {**env, "DJANGO_SETTINGS_MODULE": settings, "FOUNDRY_ACCESS_LOG": "0"}
    uvicorn = [sys.executable, "-m", "uvicorn", "foundry.asgi:application", "--host", "127.0.0.1"]
    uvicorn += ["--port", str(asgi_port), "--loop", "uvloop", "--http", "httptools", "--lifespan", "on"]
    uvicorn += ["--no-access-log", "--log-level", "warning"]
    gunicorn = [sys.executable, "-m", "gunicorn", "foundry.wsgi", "--config", "foundry/gunicorn.conf.py"]
    gunicorn_env = {**server_env, "FOUNDRY_BIND": f"127.0.0.1:{wsgi_port}", "FOUNDRY_WEB_WORKERS": "1"}
    procs = []
    try:
        procs.append(serve(uvicorn, server_env, port=asgi_port, probe="/healthz", host="localhost"))
        procs.append(serve(gunicorn, gunicorn_env, port=wsgi_port, probe="/healthz", host="localhost"))
    except BaseException:
        for proc in procs:
            stop(proc)
        raise
    return {"asgi": asgi_port, "wsgi": wsgi_port}, procs


# --- the lines --------------------------------------------------------------------------------


class Failed(Exception):
    """A call answered something else than the agents: the run stops with this message."""


@dataclass
class Line:
    name: str
    label: str
    call: Callable[[], Awaitable[None]]
    latencies: list[float] = field(default_factory=list)  # seconds, every measured call
    rates: list[float] = field(default_factory=list)  # calls/s of each round
    sessions: float = 0.0  # new PostgreSQL sessions per call

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p99(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[98]

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)


def _check_agents(names: list[str], agents: int, what: str) -> None:
    if len(names) != agents:
        raise Failed(f"{what} listed {len(names)} agents, not {agents}: {names[:10]}")


async def lines(stack: AsyncExitStack, ports: dict[str, int], token: str, agents: int) -> list[Line]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    def headers(port: int) -> dict[str, str]:
        return {"Host": f"{SLUG}.localhost:{port}", "Authorization": f"Bearer {token}"}

    asgi, wsgi = ports["asgi"], ports["wsgi"]
    mcp_url = f"http://127.0.0.1:{asgi}{MCP_PATH}"

    sdk_http = await stack.enter_async_context(httpx2.AsyncClient(headers=headers(asgi), timeout=30))
    client = await stack.enter_async_context(Client(streamable_http_client(mcp_url, http_client=sdk_http)))

    async def sdk() -> None:
        result = await client.call_tool("list_agents", {})
        if result.is_error:
            raise Failed(f"list_agents through the SDK failed: {result.content}")
        _check_agents([a["name"] for a in result.structured_content["agents"]], agents, "list_agents (SDK)")

    # The bare request: exactly the POST the SDK sent for a tools/call (its headers, the negotiated
    # protocol version among them), replayed with a fresh id; the answer is one SSE `message`
    # event (the server is stateless: there is no session id to carry).
    sent: list = []

    async def record(request) -> None:
        if request.method == "POST" and b'"tools/call"' in request.content:
            sent.append(request)

    sdk_http.event_hooks["request"].append(record)
    await sdk()
    sdk_http.event_hooks["request"].remove(record)
    if len(sent) != 1:
        raise Failed(f"expected one tools/call POST from the SDK, saw {len(sent)}")
    template = json.loads(sent[0].content)
    skip = {"host", "authorization", "content-length", "connection", "accept-encoding", "user-agent"}
    raw_headers = {k: v for k, v in sent[0].headers.items() if k.lower() not in skip} | headers(asgi)
    raw_http = await stack.enter_async_context(httpx2.AsyncClient(headers=raw_headers, timeout=30))
    counter = iter(range(1 << 20, 1 << 62))

    async def raw() -> None:
        body = {**template, "id": next(counter)}
        response = await raw_http.post(mcp_url, content=json.dumps(body))
        if response.status_code != 200:
            raise Failed(f"the bare tools/call answered {response.status_code}: {response.text[:500]}")
        message = _sse_message(response.text)
        if "result" not in message or message["result"].get("isError"):
            raise Failed(f"the bare tools/call failed: {str(message)[:500]}")
        _check_agents([a["name"] for a in message["result"]["structuredContent"]["agents"]], agents, "tools/call")

    def rest(port: int, what: str) -> Callable[[], Awaitable[None]]:
        http = httpx2.AsyncClient(headers=headers(port), timeout=30)
        stack.push_async_callback(http.aclose)
        url = f"http://127.0.0.1:{port}{REST_PATH}"

        async def call() -> None:
            response = await http.get(url)
            if response.status_code != 200:
                raise Failed(f"GET {REST_PATH} ({what}) answered {response.status_code}: {response.text[:500]}")
            _check_agents([a["name"] for a in response.json()["documents"]], agents, f"GET {REST_PATH} ({what})")

        return call

    return [
        Line("mcp-sdk", "MCP list_agents, SDK client, one session (ASGI)", sdk),
        Line("mcp-raw", "MCP tools/call, bare JSON-RPC POST (ASGI)", raw),
        Line("rest-asgi", f"REST GET {REST_PATH} on uvicorn (ASGI)", rest(asgi, "ASGI")),
        Line("rest-wsgi", f"REST GET {REST_PATH} on gunicorn (WSGI)", rest(wsgi, "WSGI")),
    ]


def _sse_message(text: str) -> dict:
    """The JSON-RPC message of a one-event SSE body (or a plain JSON body)."""
    if text.lstrip().startswith("{"):
        return json.loads(text)
    data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    payloads = [json.loads(d) for d in data if d]
    answers = [p for p in payloads if "result" in p or "error" in p]
    if len(answers) != 1:
        raise Failed(f"expected one JSON-RPC answer in the SSE body, got: {text[:500]}")
    return answers[0]


async def measure(lines_: list[Line], rounds: int, calls: int) -> None:
    """Round 0 warms up; each later round runs `calls` sequential calls per line, order rotated."""
    for number in range(rounds + 1):
        order = lines_[number % len(lines_) :] + lines_[: number % len(lines_)]
        for line in order:
            latencies = []
            started = time.perf_counter()
            for _ in range(calls):
                before = time.perf_counter()
                await line.call()
                latencies.append(time.perf_counter() - before)
            elapsed = time.perf_counter() - started
            if number:
                line.latencies += latencies
                line.rates.append(calls / elapsed)


def database_sessions() -> int:
    """Sessions ever opened on the bench database (PostgreSQL counts them as backends report)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


async def count_sessions(lines_: list[Line], calls: int) -> None:
    """New PostgreSQL sessions per call of each line: a server that opens a connection per request
    pays a connection set-up (TCP, authentication, first queries) in every call."""
    for line in lines_:
        await asyncio.sleep(SESSION_SETTLE)  # let the servers' backends report what they have
        before = await asyncio.to_thread(database_sessions)
        for _ in range(calls):
            await line.call()
        await asyncio.sleep(SESSION_SETTLE)
        line.sessions = (await asyncio.to_thread(database_sessions) - before) / calls


async def run(ports: dict[str, int], token: str, agents: int, rounds: int, calls: int) -> list[Line]:
    async with AsyncExitStack() as stack:
        measured = await lines(stack, ports, token, agents)
        await measure(measured, rounds, calls)
        await count_sessions(measured, calls)
        return measured


# --- report -----------------------------------------------------------------------------------


def report(measured: list[Line], rounds: int, calls: int, agents: int, load: tuple[float, float]) -> bool:
    by = {line.name: line for line in measured}
    wsgi, asgi = by["rest-wsgi"], by["rest-asgi"]
    print(
        f"\nlist_agents over MCP vs GET {REST_PATH}: {agents} agents, one call at a time, {rounds} interleaved "
        f"rounds of {calls} calls per line after a warm-up round; one server worker each; "
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f} before, {load[1]:.1f} after"
    )
    print(
        f"  {'line':<52}{'calls/s':>9}{'p50':>10}{'p99':>10}{'p50 / WSGI':>12}{'p50 / ASGI':>12}"
        f"{'DB sessions/call':>18}"
    )
    for line in measured:
        print(
            f"  {line.label:<52}{line.rate:>9,.0f}{line.p50 * 1000:>8.2f}ms{line.p99 * 1000:>8.2f}ms"
            f"{line.p50 / wsgi.p50:>11.2f}x{line.p50 / asgi.p50:>11.2f}x{line.sessions:>18.2f}"
        )
    sdk, raw = by["mcp-sdk"], by["mcp-raw"]
    print(f"  SDK client's share of a call: {(sdk.p50 - raw.p50) * 1000:.2f} ms (SDK p50 - bare POST p50)")
    print(f"  same sync view, ASGI / WSGI: p50 {asgi.p50 / wsgi.p50:.2f}x, calls/s {asgi.rate / wsgi.rate:.2f}x")

    print("\nTargets")
    p50_ms = sdk.p50 * 1000
    ok = verdict(f"MCP list_agents (SDK) p50 ≤ {MAX_P50_MS:g} ms on loopback ({p50_ms:.2f} ms)", p50_ms <= MAX_P50_MS)
    ratio = sdk.p50 / wsgi.p50
    ok &= verdict(
        f"MCP list_agents (SDK) p50 ≤ {MAX_REST_RATIO:g}x GET {REST_PATH} on gunicorn ({ratio:.2f}x; "
        f"{sdk.p50 / asgi.p50:.2f}x the same view on uvicorn)",
        ratio <= MAX_REST_RATIO,
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12, help="interleaved rounds after the warm-up one")
    parser.add_argument("--calls", type=int, default=40, help="sequential calls per line per round")
    parser.add_argument("--agents", type=int, default=5, help="agents published and deployed in the tenant")
    parser.add_argument("--settings", default="foundry.settings", help="the servers' settings module (to compare)")
    args = parser.parse_args()

    failure = None
    with bench_database("foundry_bench_mcp") as env:
        env = {**env, "DJANGO_SETTINGS_MODULE": "foundry.settings"}
        os.environ.update(env)
        import django

        django.setup()
        from django.db import connections

        try:
            token = setup(args.agents)
        finally:
            connections.close_all()
        ports, procs = servers(env, args.settings)
        try:
            before = os.getloadavg()[0]
            try:
                measured = asyncio.run(run(ports, token, args.agents, args.rounds, args.calls))
            except* Failed as failed:  # raised inside the SDK's task groups
                failure = str(failed.exceptions[0])
            after = os.getloadavg()[0]
        finally:
            for proc in procs:
                stop(proc)
    if failure:
        sys.exit(failure)
    return 0 if report(measured, args.rounds, args.calls, args.agents, (before, after)) else 1


if __name__ == "__main__":
    sys.exit(main())
