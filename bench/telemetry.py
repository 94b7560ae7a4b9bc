"""What tracing costs a tenant API request: telemetry fully on (every request sampled, spans
exported over OTLP/HTTP) against off, in the same run.

Creates its own database with one tenant and an API token, starts an OTLP/HTTP receiver in this
process (POST /v1/traces, answered 200; it keeps the bodies and decodes them with opentelemetry-proto's
ExportTraceServiceRequest after the load, so its work does not compete with the servers'), and two
gunicorn servers with the production settings (gthread, one worker of 4 threads, so both fit the
machine side by side): one with
OTEL_EXPORTER_OTLP_ENDPOINT pointing at the receiver and OTEL_TRACES_SAMPLER=always_on (Django,
psycopg and Redis spans, tenant attributes, the batch exporter's thread), one without (the API's
no-op tracer). wrk loads GET /api/v1/workspace with the token on each in turn, in interleaved
rounds whose order alternates, so the machine's noise falls on both alike.

    bin/dev bench bench/telemetry.py [--rounds 6] [--duration 4] [--connections 4]

Target: time per request with telemetry on ≤ 15% above off (median of the rounds' ratios). Also
checked: the receiver got spans from the traced server only, and about as many as its requests
made (spans dropped by a full export queue would flatter the figure). Exits 1 if one is missed.
Uses its own database, foundry_bench_telemetry, dropped at the end. Takes ~1.5 minutes.
"""

import argparse
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from bench._support import Load, bench_database, free_port, manage, manage_shell, serve, stop, verdict, wrk_load

SLUG = "acme"
HOST = f"{SLUG}.localhost"
API_PATH = "/api/v1/workspace"
MAX_OVERHEAD = 0.15
SERVICE_NAME = "foundry-bench"


class SpanReceiver:
    """An OTLP/HTTP trace receiver on loopback that counts what it is sent.

    It only keeps each request's body while the servers are loaded and decodes them afterwards
    (`tally`): decoding protobuf here, on the machine's same two cores, would tax the traced
    server's figure with the receiver's work."""

    def __init__(self):
        self.bodies: list[bytes] = []
        self.spans = 0
        self.exports = 0
        self.services: set[str] = set()
        receiver = self
        answer = ExportTraceServiceResponse().SerializeToString()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the exporter's session expects

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                receiver.bodies.append(body)  # list.append is atomic: no lock needed
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def tally(self) -> int:
        """Decode the bodies received so far into the counts; return the spans counted."""
        bodies, self.bodies = self.bodies, []
        for body in bodies:
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                for attribute in resource_spans.resource.attributes:
                    if attribute.key == "service.name":
                        self.services.add(attribute.value.string_value)
                self.spans += sum(len(scope_spans.spans) for scope_spans in resource_spans.scope_spans)
            self.exports += 1
        return self.spans

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.tally()


def _tenant_with_token(env: dict[str, str]) -> str:
    manage(env, "create_tenant", SLUG, "--name", "Acme", "--owner-email", "o@acme.test", quiet=True)
    script = f"""
from django_tenants.utils import schema_context
from apps.tokens.services import token_issue
with schema_context("{SLUG}"):
    print(token_issue(actor="bench", name="bench", role="admin", scopes=["read"]).plaintext)
"""
    return manage_shell(env, script)


def _server(env: dict[str, str], **extra: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server_env = {
        **env,
        "FOUNDRY_BIND": f"127.0.0.1:{port}",
        "FOUNDRY_ACCESS_LOG": "0",
        "FOUNDRY_WEB_WORKERS": "1",
        "FOUNDRY_WEB_THREADS": "4",
        **extra,
    }
    # No recycling after max_requests: a worker restarting mid-round would time requests out.
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "foundry.wsgi",
        "--config",
        "foundry/gunicorn.conf.py",
        "--max-requests",
        "0",
    ]
    return serve(command, server_env, port=port, probe="/healthz", host=HOST), port


def _median_ms(texts: list[str]) -> float:
    """Median of wrk's latencies ("812.00us", "11.68ms", "1.20s")."""
    values = []
    for text in texts:
        for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
            number = text.removesuffix(unit)
            if number != text and number.replace(".", "", 1).isdigit():
                values.append(float(number) * factor)
                break
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=int, default=4, help="seconds of each round's load")
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()

    results: dict[str, list[Load]] = {"off": [], "on": []}
    receiver = SpanReceiver()
    with bench_database("foundry_bench_telemetry") as env:
        env = {name: value for name, value in env.items() if not name.startswith("OTEL_")}
        token = _tenant_with_token(env)
        servers = {
            "off": _server(env),
            "on": _server(
                env,
                OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.port}",
                OTEL_TRACES_SAMPLER="always_on",
                OTEL_SERVICE_NAME=SERVICE_NAME,
            ),
        }
        try:
            for _proc, port in servers.values():  # warm-up: connections, caches, imports
                wrk_load(port, API_PATH, HOST, duration=2, connections=args.connections, auth=token)
            time.sleep(6)  # the warm-up's spans leave in the exporter's next batch (every 5 s)
            warmup_spans = receiver.tally()
            for round_ in range(args.rounds):
                order = ("off", "on") if round_ % 2 == 0 else ("on", "off")
                for name in order:
                    port = servers[name][1]
                    results[name].append(
                        wrk_load(port, API_PATH, HOST, duration=args.duration, connections=args.connections, auth=token)
                    )
        finally:
            for proc, _port in servers.values():
                stop(proc)  # the worker's exit flushes the spans still queued
            receiver.close()

    measured_spans = receiver.spans - warmup_spans
    on_requests = sum(load.requests for load in results["on"])
    print(
        f"\nGET {API_PATH} (API token), gunicorn gthread 1x4 per server, wrk {args.connections} connections, "
        f"{args.rounds} interleaved rounds of {args.duration}s"
    )
    for name in ("off", "on"):
        loads = results[name]
        print(
            f"  telemetry {name:<4} {statistics.median(load.rps for load in loads):>8,.0f} req/s   "
            f"p50 {_median_ms([load.p50 for load in loads]):>6.2f} ms   "
            f"p99 {_median_ms([load.p99 for load in loads]):>6.2f} ms   "
            f"(rounds: {', '.join(f'{load.rps:,.0f}' for load in loads)})"
        )
    ratios = [off.rps / on.rps for off, on in zip(results["off"], results["on"], strict=True)]
    overhead = statistics.median(ratios) - 1
    spans_per_request = measured_spans / on_requests if on_requests else 0.0
    print(
        f"  time per request on/off: median {statistics.median(ratios):.3f} "
        f"(rounds {min(ratios):.3f} to {max(ratios):.3f}); overhead {overhead:+.1%}"
    )
    print(
        f"  receiver: {receiver.spans:,} spans in {receiver.exports:,} exports from {sorted(receiver.services)}; "
        f"{spans_per_request:.2f} spans per measured request"
    )

    print("\nTargets")
    ok = verdict(f"telemetry on ≤ {MAX_OVERHEAD:.0%} slower per request ({overhead:+.1%})", overhead <= MAX_OVERHEAD)
    ok &= verdict(
        f"spans reached the receiver from the traced server only ({sorted(receiver.services)})",
        receiver.services == {SERVICE_NAME},
    )
    # Django's server span plus at least one database or Redis span per request; fewer means
    # the exporter dropped spans and the traced server did less work than it should have.
    ok &= verdict(f"every request exported its spans ({spans_per_request:.2f} per request ≥ 2)", spans_per_request >= 2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
