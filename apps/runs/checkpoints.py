"""LangGraph's PostgresSaver, writing to the tables of one tenant's schema (migrations/0003).

Isolation: each run's thread lives in its own tenant's schema; the saver reaches that schema
only. Every statement it makes runs in a transaction that first sets the search path with
`set_config(..., is_local => true)`, so the setting ends with the transaction and a connection
handed around by a transaction pooler (PgBouncer in transaction mode) never carries one
tenant's path into another's work. Server-side prepared statements are off
(`prepare_threshold=None`) for the same poolers; the connection is in autocommit mode, each
saver call being its own explicit transaction, sent as one pipeline.

One connection per process, opened on first use (so each forked Celery worker process opens
its own) and reopened when it breaks.
"""

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.db import connection as django_connection
from langgraph.checkpoint.postgres import PostgresSaver
from psycopg import sql
from psycopg.rows import DictRow, dict_row

_local = threading.local()


def _conninfo() -> str:
    if settings.FOUNDRY_CHECKPOINT_DATABASE_URL:
        return settings.FOUNDRY_CHECKPOINT_DATABASE_URL
    db = django_connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        host=db["HOST"] or "127.0.0.1",
        port=str(db["PORT"] or 5432),
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"],
        application_name="foundry-checkpoints",
    )


def checkpoint_connection() -> psycopg.Connection:
    """This process's (and thread's) connection for checkpoints, opened or reopened as needed."""
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed or conn.broken or getattr(_local, "pid", None) != os.getpid():
        conn = psycopg.Connection.connect(_conninfo(), autocommit=True, prepare_threshold=None, row_factory=dict_row)
        _local.conn, _local.pid = conn, os.getpid()
    return conn


def checkpoint_connection_close() -> None:
    conn = getattr(_local, "conn", None)
    if conn is not None and getattr(_local, "pid", None) == os.getpid():
        conn.close()
    _local.conn = None


class TenantSaver(PostgresSaver):
    """PostgresSaver confined to one schema (see the module docstring)."""

    def __init__(self, conn: psycopg.Connection, schema: str):
        super().__init__(conn)
        self.search_path = sql.Identifier(schema).as_string(conn)

    @contextmanager
    def _cursor(self, *, pipeline: bool = False) -> Iterator[psycopg.Cursor[DictRow]]:
        conn = self.conn
        with self.lock, conn.pipeline(), conn.transaction(), conn.cursor(binary=True, row_factory=dict_row) as cur:
            cur.execute("SELECT set_config('search_path', %s, true)", (self.search_path,))
            yield cur


def checkpointer(schema: str) -> TenantSaver:
    return TenantSaver(checkpoint_connection(), schema)
