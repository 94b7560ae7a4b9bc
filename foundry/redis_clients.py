"""Redis by address, or through Redis Sentinel (docs/operations/scaling.md).

Without FOUNDRY_REDIS_SENTINELS every Redis URL (REDIS_URL, FOUNDRY_CACHE_URL, CELERY_BROKER_URL,
FOUNDRY_RATELIMIT_REDIS_URL) names its server. With it, the URLs keep naming the database and
password, and the server is the current master of FOUNDRY_REDIS_SENTINEL_MASTER as the sentinels
report it, asked again on every new connection, so a failover is followed without a restart.
The same holds for each client: django-redis's (the cache, routes, locks), Celery's broker and
results (kombu's `sentinel://` transport), and the platform's own (`redis_client`: the rate
limiter, health checks, worker heartbeats, a workspace's purge). `sentinel_settings` derives the
first two from the plain URLs, in settings.py.

Every client the platform makes (`redis_client`, django-redis's through the pool classes below,
and the connections Celery's broker publishes on: foundry/broker.py) has `InterruptSafe`
connections: a command cut off by an exception (a soft time limit) never leaves its reply for the
next command to take as its own, nor crashes the process.
"""

import functools
import threading
from urllib.parse import quote, unquote, urlsplit

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.connection import PythonRespSerializer
from redis.exceptions import ResponseError
from redis.retry import Retry
from redis.sentinel import Sentinel
from redis.sentinel import SentinelConnectionPool as _SentinelConnectionPool


class _Packed(list):
    """Packed commands, with the number of replies they will be answered with."""

    def __init__(self, chunks, replies: int):
        super().__init__(chunks)
        self.replies = replies


class InterruptSafe:
    """A redis-py connection that stays usable when an exception interrupts it anywhere:
    Celery's soft time limit raises from a signal handler, wherever the worker's main thread is.

    - It knows how many replies the server still owes it, and is closed before its next command
      while any are: they would be the replies of a command cut off between its send and its
      read, which the next command (any workspace's) would read as its own. redis-py 8.1 has no
      guard there, and its pool's check for a connection with data waiting is skipped while
      maintenance notifications are configured ("auto", the default), and finds nothing when the
      reply has not arrived yet. Counted: one reply per `send_command`, one per command of
      `pack_commands` (pipelines, MULTI and EXEC); one less per reply read, an error reply too.
      A cut-off read already closes the connection (redis-py). For commands and their replies
      only: a subscriber's pushed messages are not counted (the platform subscribes nowhere).
    - It packs commands in Python, not with hiredis: hiredis 3.5's `pack_command` dereferences
      the NULL that `repr` of an int returns when a signal handler raises in it (CPython checks
      for signals while it converts an int to text), and the process dies of a segfault."""

    _replies_owed = 0

    def _construct_command_packer(self, packer):
        return packer or PythonRespSerializer(self._buffer_cutoff, self.encoder.encode)

    def send_command(self, *args, **kwargs):
        check_health = kwargs.get("check_health", True)
        self.send_packed_command(_Packed(self._command_packer.pack(*args), 1), check_health=check_health)

    def pack_commands(self, commands):
        commands = list(commands)
        return _Packed(super().pack_commands(commands), len(commands))

    def send_packed_command(self, command, check_health=True):
        if self._replies_owed:
            self.disconnect()
        # Connected and checked first: those commands are read as they are sent.
        if not self._sock:
            self.connect_check_health(check_health=False)
        if check_health:
            self.check_health()
        # Owed from before the first byte goes: a send cut short leaves the connection unusable too.
        self._replies_owed += getattr(command, "replies", 1)
        super().send_packed_command(command, check_health=False)

    def read_response(self, *args, **kwargs):
        try:
            response = super().read_response(*args, **kwargs)
        except ResponseError:  # an error reply, read
            self._replies_owed = max(0, self._replies_owed - 1)
            raise
        self._replies_owed = max(0, self._replies_owed - 1)
        return response

    def disconnect(self, *args, **kwargs):
        self._replies_owed = 0
        super().disconnect(*args, **kwargs)


@functools.cache
def interrupt_safe(connection_class: type) -> type:
    """`connection_class` with `InterruptSafe` (one class per class)."""
    if issubclass(connection_class, InterruptSafe):
        return connection_class
    return type(
        f"{connection_class.__name__}InterruptSafe", (InterruptSafe, connection_class), {"__module__": __name__}
    )


class ConnectionPool(redis.ConnectionPool):
    """redis-py's pool, of `InterruptSafe` connections of whichever class the URL asked for
    (TCP, TLS, a Unix socket). django-redis's pool too (settings.py)."""

    def __init__(self, connection_class=redis.Connection, **kwargs):
        super().__init__(connection_class=interrupt_safe(connection_class), **kwargs)


class SentinelConnectionPool(_SentinelConnectionPool):
    """redis-py's Sentinel pool, of `InterruptSafe` connections."""

    def __init__(self, service_name, sentinel_manager, **kwargs):
        super().__init__(service_name, sentinel_manager, **kwargs)
        self.connection_class = interrupt_safe(self.connection_class)


def sentinels_parse(text: str) -> list[tuple[str, int]]:
    """`host:port,host:port` (an IPv6 host in brackets) → [(host, port)]; ValueError if malformed.

    The error names a malformed entry by its number, never its text: an entry written as a Redis
    URL may carry the sentinels' password, and the error ends up in a crashing process's log."""
    found = []
    for number, item in enumerate(filter(None, (part.strip() for part in text.split(","))), start=1):
        parts = urlsplit(f"//{item}")
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None or parts.username or parts.password or parts.path:
            hint = " (the sentinels' password goes in FOUNDRY_REDIS_SENTINEL_PASSWORD)" if "@" in item else ""
            raise ValueError(f"entry {number} is not host:port{hint}")
        found.append((parts.hostname, port))
    return found


def db_and_password(url: str) -> tuple[int, str | None]:
    """The database number and password of a `redis://` or `sentinel://` URL (of kombu's
    `a;b` form: the first). ValueError for `rediss://`: TLS through Sentinel is not supported
    yet, and a URL asking for it is never used in clear."""
    parts = urlsplit(url.split(";", 1)[0])
    if parts.scheme == "rediss":
        raise ValueError("a rediss:// URL: TLS through Sentinel is not supported")
    path = parts.path.strip("/")
    return (int(path) if path.isdigit() else 0), (unquote(parts.password) if parts.password else None)


def _sentinel_kwargs(timeout: float | None) -> dict:
    """How each sentinel is asked where the master is: once (redis-py would retry a silent one
    three times, with backoff: ~25 s before the next sentinel was asked), and within a quarter of
    the caller's timeout — one of several, the next is asked if it does not answer at once."""
    timeout = None if timeout is None else timeout / 4
    kwargs: dict = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "retry": Retry(NoBackoff(), 0)}
    if settings.FOUNDRY_REDIS_SENTINEL_PASSWORD:
        kwargs["password"] = settings.FOUNDRY_REDIS_SENTINEL_PASSWORD
    return kwargs


# One Sentinel per set of connection options, for the process's life: redis-py puts the sentinel
# that answered first in its list, which a new Sentinel per client (a probe's, a heartbeat's) forgot.
_sentinels: dict[str, Sentinel] = {}
_sentinels_lock = threading.Lock()


def _sentinel(connection: dict) -> Sentinel:
    options = sorted(
        (name, value if isinstance(value, int | float | str | bool | None) else type(value).__name__)
        for name, value in connection.items()
    )  # a Retry by its kind: the callers each give one the same way
    key = repr((settings.FOUNDRY_REDIS_SENTINELS, options))
    with _sentinels_lock:
        sentinel = _sentinels.get(key)
        if sentinel is None:
            sentinel = _sentinels[key] = Sentinel(
                settings.FOUNDRY_REDIS_SENTINELS,
                sentinel_kwargs=_sentinel_kwargs(connection.get("socket_timeout")),
                **connection,
            )
        return sentinel


def redis_client(url: str, **connection) -> redis.Redis:
    """A client of the Redis `url` names: that server, or under Sentinel the master of its
    service (the URL's database and password). `connection` are redis-py's connection options."""
    if not settings.FOUNDRY_REDIS_SENTINELS:
        return redis.Redis.from_pool(ConnectionPool.from_url(url, **connection))
    db, password = db_and_password(url)
    return _sentinel(connection).master_for(
        settings.FOUNDRY_REDIS_SENTINEL_MASTER,
        connection_pool_class=SentinelConnectionPool,
        db=db,
        password=password,
    )


def sentinel_settings(
    *, sentinels: list[tuple[str, int]], master: str, password: str, cache: dict, broker_url: str, result_url: str
) -> dict:
    """The settings that route django-redis and Celery through the sentinels: the cache's
    LOCATION and OPTIONS, and Celery's `sentinel://` URLs with their transport options."""
    sentinel_kwargs = {"password": password} if password else {}

    def auth(secret: str | None) -> str:
        return f":{quote(secret, safe='')}@" if secret else ""

    def kombu_url(url: str) -> str:
        db, secret = db_and_password(url)
        hosts = [(f"[{host}]" if ":" in host else host, port) for host, port in sentinels]
        return ";".join(f"sentinel://{auth(secret)}{host}:{port}/{db}" for host, port in hosts)

    db, secret = db_and_password(cache["LOCATION"])
    # Asking a sentinel where the master is waits no longer than asking the master (settings.py:
    # a stalled sentinel must not hold a request's enqueue for ever either).
    transport = {
        "master_name": master,
        "sentinel_kwargs": {**sentinel_kwargs, "socket_timeout": 3, "socket_connect_timeout": 3},
    }
    return {
        "cache": {
            **cache,
            # The master only (DefaultClient, one server): a replica's lag would undo an
            # invalidation the master just made (a route, a lock).
            "LOCATION": f"redis://{auth(secret)}{master}/{db}",
            "OPTIONS": {
                **cache.get("OPTIONS", {}),
                "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
                "CONNECTION_POOL_CLASS": "foundry.redis_clients.SentinelConnectionPool",
                "SENTINELS": sentinels,
                "SENTINEL_KWARGS": {**sentinel_kwargs, "socket_timeout": 2, "socket_connect_timeout": 2},
            },
        },
        "broker_url": kombu_url(broker_url),
        "result_url": kombu_url(result_url),
        "transport": transport,
    }
