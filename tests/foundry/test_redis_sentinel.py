"""Redis behind Sentinel (foundry/redis_clients.py, docs/operations/scaling.md): a master, its
replica and a sentinel of this module's own, real redis-server processes. The platform's own
clients, django-redis's cache and Celery's broker and results all find the master through the
sentinel, from URLs whose host is nobody; after a failover the same clients write to the new
master."""

import os
import signal
import subprocess
import sys
import time
import uuid

import kombu
import pytest
import redis
from django_redis.pool import SentinelConnectionFactory

from foundry.broker import GuardedSentinelTransport
from foundry.ratelimit import Limiter, Rate, limiter_redis
from foundry.redis_clients import redis_client, sentinel_settings, sentinels_parse
from tests.conftest import ROOT, free_port, server_env
from tests.foundry.test_redis_interrupted_reply import assert_next_command_reads_its_own_reply

MASTER = "foundry-test"
NOWHERE = "redis://nowhere.invalid:1"  # the URLs' hosts: under Sentinel only their db and password count


def _redis_server(folder, *args: str) -> subprocess.Popen:
    # A replica's first sync makes the master write a snapshot: into the test's own folder.
    command = ["redis-server", *args, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)


def _until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
            if value:
                return value
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """(master port, replica port, sentinel port), all running; stopped afterwards."""
    master, replica, sentinel = free_port(), free_port(), free_port()
    folder = tmp_path_factory.mktemp("sentinel")
    conf = folder / "sentinel.conf"
    conf.write_text(
        f"port {sentinel}\nbind 127.0.0.1\n"
        f"sentinel monitor {MASTER} 127.0.0.1 {master} 1\n"
        f"sentinel down-after-milliseconds {MASTER} 1000\n"
        f"sentinel failover-timeout {MASTER} 4000\n"
    )
    procs = [
        _redis_server(folder, "--port", str(master)),
        _redis_server(folder, "--port", str(replica), "--replicaof", "127.0.0.1", str(master)),
    ]
    sentinel_command = ["redis-server", str(conf), "--sentinel"]
    procs.append(subprocess.Popen(sentinel_command, cwd=folder, stdout=subprocess.DEVNULL, start_new_session=True))
    try:
        watcher = redis.Redis(port=sentinel, socket_timeout=2)
        _until(lambda: any(_promotable(r) for r in watcher.sentinel_slaves(MASTER)), 30, "a replica it may promote")
        yield master, replica, sentinel
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _promotable(replica: dict) -> bool:
    flags = replica.get("flags")
    flags = set(flags.split(",")) if isinstance(flags, str) else set(flags or ())
    return flags == {"slave"} and replica.get("master-link-status") == "ok"


@pytest.fixture
def via_sentinel(settings, cluster):
    settings.FOUNDRY_REDIS_SENTINELS = [("127.0.0.1", cluster[2])]
    settings.FOUNDRY_REDIS_SENTINEL_MASTER = MASTER
    return cluster


def _master_port(sentinel: int) -> int:
    return int(redis.Redis(port=sentinel, socket_timeout=2).sentinel_get_master_addr_by_name(MASTER)[1])


def test_the_sentinel_addresses_are_read_strictly():
    assert sentinels_parse("10.0.0.1:26379, [::1]:26380,") == [("10.0.0.1", 26379), ("::1", 26380)]
    for bad in ("10.0.0.1", "10.0.0.1:x", "a:1:2", "u:p@h:1", "h:1/x", "h:99999"):
        with pytest.raises(ValueError):
            sentinels_parse(bad)


def test_the_derived_settings_point_every_client_at_the_service():
    derived = sentinel_settings(
        sentinels=[("10.0.0.1", 26379), ("::1", 26380)],
        master="main",
        password="s3nt",
        cache={"LOCATION": "redis://:p%40ss@old:6379/1", "OPTIONS": {"SOCKET_TIMEOUT": 2}},
        broker_url="redis://:p%40ss@old:6379/2",
        result_url="redis://old:6379/3",
    )
    assert derived["cache"]["LOCATION"] == "redis://:p%40ss@main/1"
    assert derived["cache"]["OPTIONS"]["SENTINELS"] == [("10.0.0.1", 26379), ("::1", 26380)]
    assert derived["broker_url"] == "sentinel://:p%40ss@10.0.0.1:26379/2;sentinel://:p%40ss@[::1]:26380/2"
    assert derived["result_url"] == "sentinel://10.0.0.1:26379/3;sentinel://[::1]:26380/3"
    # Bounded like the master's: a stalled sentinel does not hold an enqueue for ever.
    sentinel_kwargs = {"password": "s3nt", "socket_timeout": 3, "socket_connect_timeout": 3}
    assert derived["transport"] == {"master_name": "main", "sentinel_kwargs": sentinel_kwargs}


def test_the_platforms_clients_follow_the_master_through_a_failover(via_sentinel):
    master, replica, sentinel = via_sentinel
    client = redis_client(f"{NOWHERE}/3", socket_timeout=2)
    client.set("before", "1")
    assert redis.Redis(port=master, db=3).get("before") == b"1"  # the master, found by the sentinel
    limiter = Limiter(limiter_redis(f"{NOWHERE}/4"), cooldown=0)
    key = f"rl:test:{uuid.uuid4().hex}"
    assert [limiter.check(key, Rate(2, 60)).allowed for _ in range(3)] == [True, True, False]

    _until(lambda: redis.Redis(port=sentinel).execute_command("SENTINEL", "FAILOVER", MASTER), 30, "a failover begun")
    _until(lambda: _master_port(sentinel) == replica, 30, "the replica promoted")
    # Until the old master learns it is a replica it still takes writes (Redis replicates
    # asynchronously: those are lost); then it refuses them, and the client asks the sentinel again.
    promoted = redis.Redis(port=replica, db=3)
    _until(lambda: client.set("after", "2") and promoted.get("after") == b"2", 30, "a write on the new master")
    assert _until(lambda: limiter.check(f"{key}-after", Rate(1, 60)).allowed, 30, "the limiter on the new master")


def test_a_cut_off_command_never_answers_the_next_through_the_sentinel(via_sentinel):
    """The platform's clients, django-redis's and the broker's channel (foundry/broker.py), on the
    master the sentinel names: a command
    cut off between its send and its read leaves no reply for the next (foundry/redis_clients.py)."""
    assert_next_command_reads_its_own_reply(redis_client(f"{NOWHERE}/3", socket_timeout=2))
    cache = sentinel_settings(
        sentinels=[("127.0.0.1", via_sentinel[2])],
        master=MASTER,
        password="",
        cache={"LOCATION": f"{NOWHERE}/6", "OPTIONS": {"SOCKET_TIMEOUT": 2}},
        broker_url=f"{NOWHERE}/7",
        result_url=f"{NOWHERE}/7",
    )["cache"]
    assert_next_command_reads_its_own_reply(SentinelConnectionFactory(cache["OPTIONS"]).connect(cache["LOCATION"]))
    broker = kombu.Connection(
        f"sentinel://127.0.0.1:{via_sentinel[2]}/7",
        transport=GuardedSentinelTransport,
        transport_options={"master_name": MASTER},
    )
    with broker, broker.default_channel.conn_or_acquire() as client:
        assert_next_command_reads_its_own_reply(client)


def test_the_cache_and_celery_run_through_the_sentinel(via_sentinel, django_db_setup):
    """A Celery worker and a client process, configured by URLs naming nobody and the sentinel:
    a task goes through the broker, its result comes back through the result backend, and the
    cache answers, all on the master the sentinel names."""
    sentinel = via_sentinel[2]
    master = _master_port(sentinel)
    env = server_env(
        FOUNDRY_REDIS_SENTINELS=f"127.0.0.1:{sentinel}",
        FOUNDRY_REDIS_SENTINEL_MASTER=MASTER,
        REDIS_URL=f"{NOWHERE}/5",
        FOUNDRY_CACHE_URL=f"{NOWHERE}/6",
        CELERY_BROKER_URL=f"{NOWHERE}/7",
        CELERY_RESULT_BACKEND=f"{NOWHERE}/7",
    )
    hostname = f"sentinel-{uuid.uuid4().hex[:8]}@localhost"
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "foundry", "worker", "--pool", "solo", "--hostname", hostname),
            *("--loglevel", "WARNING", "--without-gossip", "--without-mingle"),
        ],
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    code = (
        "import time\n"
        "from django.core.cache import cache\n"
        "from foundry.celery import app\n"
        "from apps.tenants.models import Tenant\n"
        "from apps.tenants.tasks import tenant_refresh_stats\n"
        "cache.set('through-sentinel', 'yes', 60)\n"
        "assert cache.get('through-sentinel') == 'yes'\n"
        "deadline = time.monotonic() + 60\n"
        f"while not app.control.ping(destination=['{hostname}'], timeout=1):\n"
        "    assert time.monotonic() < deadline, 'the worker did not answer'\n"
        "Tenant.objects.filter(schema_name='acme').update(member_count=0)\n"
        "tenant_refresh_stats.delay('acme')\n"
        "while not Tenant.objects.filter(schema_name='acme', member_count__gt=0).exists():\n"
        "    assert time.monotonic() < deadline + 60, 'the worker did not run the task'\n"
        "    time.sleep(0.1)\n"
        "print('refreshed by the worker')\n"
    )
    try:
        shell = [sys.executable, "manage.py", "shell", "-c", code]
        done = subprocess.run(shell, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    assert done.returncode == 0, done.stderr[-3000:]
    assert "refreshed by the worker" in done.stdout, done.stdout
    on_master = redis.Redis(port=master, db=6)
    assert any(b"through-sentinel" in key for key in on_master.scan_iter(count=1000))
