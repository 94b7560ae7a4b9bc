"""A Redis command cut off by an exception (Celery's soft time limit, raised from a signal
handler wherever the worker's main thread is) must leave the process's Redis clients usable: its
reply is never read by the next command, another workspace's, as its own, and the process does
not crash (foundry/redis_clients.py, InterruptSafe).

redis-py 8.1 has no guard between a command's send and its read, and its pool's check for a
connection with data waiting is skipped while maintenance notifications are configured (the
default), so each of these failed before: workspace B was refused a run slot with A's reply, read
A's value, a pipeline's replies went to the next command, and a signal handler raising while
hiredis packed an int argument killed the process (SIGSEGV)."""

import contextlib
import os
import subprocess
import sys
import textwrap
import uuid
from unittest import mock

import pytest
import redis
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django_redis import get_redis_connection

from foundry.ratelimit import Limiter, limit_key, limiter_redis
from foundry.redis_clients import redis_client


@contextlib.contextmanager
def cut_off_after_send():
    """The next command is sent and its reply never read: SoftTimeLimitExceeded is raised
    where the signal handler raises it when the alarm comes just after the send."""
    read = redis.Redis.parse_response
    armed = True

    def parse_response(self, connection, command_name, **options):
        nonlocal armed
        if armed:
            armed = False
            raise SoftTimeLimitExceeded()
        return read(self, connection, command_name, **options)

    with mock.patch.object(redis.Redis, "parse_response", parse_response):
        yield


def assert_next_command_reads_its_own_reply(client: redis.Redis):
    """Workspace A's GET is cut off; workspace B's, next on the same client, reads B's value."""
    a, b = (f"test:interrupted:{uuid.uuid4().hex}:{workspace}" for workspace in "ab")
    client.set(a, "acme's secret", ex=60)
    client.set(b, "globex's value", ex=60)
    with cut_off_after_send(), pytest.raises(SoftTimeLimitExceeded):
        client.get(a)
    assert client.get(b) == b"globex's value"
    assert client.get(a) == b"acme's secret"  # and the client goes on answering each its own


@pytest.mark.parametrize("client", ["limiter", "redis_client", "cache"])
def test_a_cut_off_command_never_answers_the_next(client):
    url = settings.CACHES["default"]["LOCATION"]
    clients = {
        "limiter": lambda: limiter_redis(url),
        "redis_client": lambda: redis_client(url, socket_timeout=2),
        "cache": lambda: get_redis_connection("default"),
    }
    assert_next_command_reads_its_own_reply(clients[client]())


def test_a_cut_off_command_on_the_brokers_channel_never_answers_the_next():
    """The connections a task publishes its tasks on (kombu's channel's pool, in the task's own
    process), through the platform's transport (foundry/broker.py)."""
    from foundry.celery import app

    with app.connection_for_write() as connection, connection.default_channel.conn_or_acquire() as client:
        assert_next_command_reads_its_own_reply(client)


@pytest.mark.parametrize("transaction", [True, False])
def test_a_cut_off_pipeline_leaves_none_of_its_replies_to_the_next_command(transaction):
    cache = get_redis_connection("default")
    a, b = (f"test:interrupted:{uuid.uuid4().hex}:{workspace}" for workspace in "ab")
    cache.set(b, "globex's value", ex=60)
    with cut_off_after_send(), pytest.raises(SoftTimeLimitExceeded):
        cache.pipeline(transaction=transaction).set(a, "1", ex=60).incr(a).get(a).execute()
    assert cache.get(b) == b"globex's value"
    assert cache.pipeline(transaction=transaction).incr(a).get(a).execute() == [3, b"3"]


def test_a_cut_off_slot_request_never_refuses_the_next_workspaces_request():
    limiter = Limiter(limiter_redis(settings.CACHES["default"]["LOCATION"]))
    run = uuid.uuid4().hex
    busy = limit_key("runs", f"acme-{run}")  # workspace A: its one run slot is taken
    assert limiter.acquire(busy, 1, 60)
    with cut_off_after_send(), pytest.raises(SoftTimeLimitExceeded):
        limiter.acquire(busy, 1, 60)  # A's next run, refused: the refusal is never read
    # Workspace B, with no run executing, asks for a slot on a key nothing else ever wrote.
    assert limiter.acquire(limit_key("runs", f"globex-{run}"), 1, 60) is not None
    assert limiter.acquire(busy, 1, 60) is None


def _child(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "foundry.settings")}
    command = [sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(code), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=settings.BASE_DIR)


def test_a_signal_raising_while_a_command_is_packed_does_not_crash_the_process():
    """CPython checks for signals while it turns a long int into text; hiredis's packer took
    the failed conversion's NULL as the text."""
    done = _child(
        """
        import signal, sys, uuid
        import django
        django.setup()
        from celery.exceptions import SoftTimeLimitExceeded
        from foundry.redis_clients import redis_client

        def soft_time_limit(signum, frame):
            raise SoftTimeLimitExceeded()

        sys.set_int_max_str_digits(0)
        huge = 7 ** 400_000  # ~340,000 digits: a second or more to write out
        client = redis_client(sys.argv[1], socket_timeout=2)
        key = f"test:interrupted:{uuid.uuid4().hex}"
        signal.signal(signal.SIGALRM, soft_time_limit)
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        try:
            client.set(key, huge, ex=60)
        except SoftTimeLimitExceeded:
            pass
        signal.setitimer(signal.ITIMER_REAL, 0)
        client.set(key, "after", ex=60)
        print("ALIVE", client.get(key).decode())
        """,
        settings.CACHES["default"]["LOCATION"],
    )
    assert done.returncode == 0 and done.stdout.split() == ["ALIVE", "after"], (done.returncode, done.stderr[-2000:])


def test_slot_requests_under_random_soft_time_limits_each_read_their_own_reply():
    """The real thing: SIGALRM at random 0.1-2 ms into a stream of workspace A's refused slot
    requests, hundreds of times; after each, workspace B's request on a fresh key must succeed.
    A loop the alarm did not stop within 0.2 s (a handler's exception can be swallowed inside
    redis-py's metrics, which catch Exception) just goes on to the next round."""
    done = _child(
        """
        import random, signal, sys, time, uuid
        import django
        django.setup()
        from celery.exceptions import SoftTimeLimitExceeded
        from foundry.ratelimit import Limiter, limit_key, limiter_redis

        def soft_time_limit(signum, frame):
            raise SoftTimeLimitExceeded()

        signal.signal(signal.SIGALRM, soft_time_limit)
        limiter = Limiter(limiter_redis(sys.argv[1]), cooldown=0)
        run = uuid.uuid4().hex[:10]
        busy = limit_key("runs", f"acme-{run}")
        assert limiter.acquire(busy, 1, 60)
        interrupts, deadline = 0, time.monotonic() + 6
        for i in range(400):
            if time.monotonic() > deadline:
                break
            try:
                signal.setitimer(signal.ITIMER_REAL, random.uniform(0.0001, 0.002))
                until = time.monotonic() + 0.2
                while time.monotonic() < until:
                    limiter.acquire(busy, 1, 60)
            except SoftTimeLimitExceeded:
                interrupts += 1
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if limiter.acquire(limit_key("runs", f"globex-{run}-{i}"), 1, 60) is None:
                print(f"MISMATCH after {interrupts} interruptions", flush=True)
                sys.exit(0)
        print(f"CLEAN after {interrupts} interruptions", flush=True)
        """,
        settings.CACHES["default"]["LOCATION"],
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    verdict = done.stdout.split()
    assert verdict[0] == "CLEAN" and int(verdict[2]) >= 100, done.stdout


def test_the_platforms_redis_clients_are_interrupt_safe_whatever_the_url_asks_for(tmp_path):
    """TLS and Unix-socket URLs keep their own connection classes, made interrupt safe."""
    from foundry.redis_clients import ConnectionPool, InterruptSafe

    for url, kind in [
        ("redis://127.0.0.1:6379/0", redis.Connection),
        ("rediss://127.0.0.1:6379/0", redis.SSLConnection),
        (f"unix://{tmp_path}/redis.sock?db=0", redis.UnixDomainSocketConnection),
    ]:
        pool = redis_client(url).connection_pool
        assert issubclass(pool.connection_class, InterruptSafe) and issubclass(pool.connection_class, kind), url
        assert isinstance(pool, ConnectionPool)
