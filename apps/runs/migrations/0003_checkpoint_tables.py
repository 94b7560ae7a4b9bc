"""The tables of langgraph-checkpoint-postgres' PostgresSaver, in every tenant schema.

A frozen copy of `PostgresSaver.MIGRATIONS` 0-9 (langgraph-checkpoint-postgres 3.2.0), so the
base schema and every tenant cloned from it hold them, and the saver's own migration records
(`checkpoint_migrations`, copied with the rows when a tenant is cloned) say they are applied:
`PostgresSaver.setup()` would find nothing to do, and is never called at run time. The indexes
are built without CONCURRENTLY (not allowed in a transaction; the tables are new and empty).
A library upgrade that adds migrations needs a new migration here (a test checks the count).
"""

from django.db import migrations

APPLIED = 10  # PostgresSaver.MIGRATIONS[0:10]

SQL = """
CREATE TABLE checkpoint_migrations (
    v INTEGER PRIMARY KEY
);
CREATE TABLE checkpoints (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    checkpoint_id TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    type TEXT,
    checkpoint JSONB NOT NULL,
    metadata JSONB NOT NULL DEFAULT '{}',
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
);
CREATE TABLE checkpoint_blobs (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    channel TEXT NOT NULL,
    version TEXT NOT NULL,
    type TEXT NOT NULL,
    blob BYTEA,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
);
CREATE TABLE checkpoint_writes (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    channel TEXT NOT NULL,
    type TEXT,
    blob BYTEA NOT NULL,
    task_path TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);
CREATE INDEX checkpoints_thread_id_idx ON checkpoints(thread_id);
CREATE INDEX checkpoint_blobs_thread_id_idx ON checkpoint_blobs(thread_id);
CREATE INDEX checkpoint_writes_thread_id_idx ON checkpoint_writes(thread_id);
INSERT INTO checkpoint_migrations (v) SELECT generate_series(0, 9);
"""

REVERSE = "DROP TABLE checkpoint_writes, checkpoint_blobs, checkpoints, checkpoint_migrations;"


class Migration(migrations.Migration):
    dependencies = [("runs", "0002_append_only")]

    operations = [migrations.RunSQL(SQL, REVERSE)]
