"""Round trips one request costs: every PostgreSQL and Redis exchange, counted on the wire.

Child process of bench/tenant_routing.py (one per settings module, since Django is set up once
per process). Requests go through Django's own WSGI handler, so the request_started and
request_finished signals run as under gunicorn (persistent connections, CONN_HEALTH_CHECKS);
the test Client would skip them. PostgreSQL is traced with libpq's protocol trace, which sees
statements Django's query log does not (the health check runs on the raw connection); a round
trip is one ReadyForQuery from the server. Redis round trips are the packets redis-py sends.

    DJANGO_SETTINGS_MODULE=bench.settings_tenant python -m bench._request_trace PATH HOST OTHER_HOST CASE...

CASE is `warm` (GET HOST again and again: route in this process's cache, connection already on
its schema), `switch` (alternately OTHER_HOST and HOST: the schema changes every request),
`expired` (this process's route cache expired: the route comes from Redis) or `cold` (nothing
cached: the route comes from PostgreSQL). Prints JSON.
"""

import io
import json
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import django
import redis.connection

_PARSE = re.compile(r'"[^"]*" "(.*)" \d+(?: \S+)*$')
_redis_sends = 0


def _count_redis_sends() -> None:
    original = redis.connection.AbstractConnection.send_packed_command

    def send_packed_command(self: Any, command: Any, check_health: bool = True) -> None:
        global _redis_sends
        _redis_sends += 1
        original(self, command, check_health)

    redis.connection.AbstractConnection.send_packed_command = send_packed_command


def _trace_messages(trace: str) -> tuple[int, list[str]]:
    """(round trips, statements sent) from a libpq trace."""
    round_trips, statements = 0, []
    for line in trace.splitlines():
        fields = line.split("\t")
        if len(fields) < 3:
            continue
        direction, kind = fields[0], fields[2]
        if direction == "B" and kind == "ReadyForQuery":
            round_trips += 1
        elif direction == "F" and kind == "Query":  # simple protocol: "SQL"
            statements.append(fields[3].strip()[1:-1])
        elif direction == "F" and kind == "Parse":  # extended protocol: "name" "SQL" nparams oids...
            parse = _PARSE.match(fields[3].strip())
            statements.append(parse.group(1) if parse else fields[3].strip())
    return round_trips, statements


def main(path: str, host: str, other_host: str, cases: Iterable[str]) -> dict[str, Any]:
    django.setup()
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from psycopg import pq

    from apps.tenants.routing import route_cache_clear, route_cache_clear_local

    _count_redis_sends()
    app = WSGIHandler()
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
    }

    def request(to: str = host) -> str:
        status: list[str] = []
        response = app(
            {**environ, "SERVER_NAME": to, "HTTP_HOST": to, "wsgi.input": io.BytesIO()},
            lambda s, headers, exc_info=None: status.append(s),
        )
        body = b"".join(response).decode()
        response.close()
        if not status[0].startswith("200"):
            raise SystemExit(f"{to}{path} answered {status[0]}: {body}")
        return body

    def traced(prepare: Callable[[], None], hosts: list[str]) -> dict[str, Any]:
        global _redis_sends
        prepare()
        repeat = len(hosts)
        with tempfile.TemporaryFile() as trace:
            pgconn = connection.connection.pgconn
            pgconn.trace(trace.fileno())
            pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            _redis_sends = 0
            bodies = {request(to) for to in hosts}
            redis_sends = _redis_sends
            if connection.connection is not None and connection.connection.pgconn is pgconn:
                pgconn.untrace()
            trace.seek(0)
            round_trips, statements = _trace_messages(trace.read().decode())
        return {
            "sql_round_trips": round_trips / repeat,
            "redis_round_trips": redis_sends / repeat,
            "statements": {sql: n / repeat for sql, n in Counter(statements).items()},
            "bodies": sorted(bodies),
        }

    for _ in range(10):  # connection open, routes cached, code paths warm
        request(other_host)
        request(host)
    results: dict[str, Any] = {"debug": settings.DEBUG, "middleware": settings.MIDDLEWARE}
    for case in cases:
        if case == "warm":
            results[case] = traced(lambda: None, [host] * 20)
        elif case == "switch":
            results[case] = traced(lambda: None, [other_host, host] * 10)
        elif case == "expired":
            results[case] = traced(route_cache_clear_local, [host])
        elif case == "cold":
            results[case] = traced(route_cache_clear, [host])
        else:
            raise SystemExit(f"unknown case {case!r}")
    route_cache_clear()  # leave nothing of this throwaway database in the shared Redis
    connection.close()
    return results


if __name__ == "__main__":
    if len(sys.argv) < 5:
        raise SystemExit(__doc__)
    print(json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])))
