"""Replays of genuine, signed Celery messages by someone who can write to the broker's Redis but
holds no signing key (docs/operations/deployment.md, "Celery message signing": tasks are safe to
run twice and take their tenant in their (signed) arguments; PRODUCT.md: "Celery messages are
signed or otherwise authenticated")."""

import json
import time
import uuid

from apps.lifecycle.backup import backup_list
from foundry.celery import app
from tests.conftest import audit_events
from tests.foundry.test_celery_signing import broker
from tests.lifecycle.test_backup import backup_role_url, unblocked  # noqa: F401 (fixtures)
from tests.runs.conftest import FINANCE, agent_yaml, deploy, http_tool, ledger  # noqa: F401 (fixture)
from tests.runs.test_worker import queue, start, tenant, wait_for, worker  # noqa: F401 (fixtures)


def _captured(queue_name: str) -> str:
    """The one signed message waiting in `queue_name` (no worker consumes it), taken out."""
    deadline = time.monotonic() + 10
    while not (raw := broker().lrange(queue_name, 0, -1)):
        assert time.monotonic() < deadline, "no message was queued"
        time.sleep(0.05)
    broker().delete(queue_name)
    (message,) = raw
    return message


def _backups_created() -> int:
    return len(audit_events("public", action="lifecycle.backup.created"))


def test_a_replayed_daily_backup_message_does_not_rotate_away_older_backups(unblocked, backup_role_url, tmp_path):  # noqa: F811
    """The broker's copy of beat's daily `lifecycle.backup` message, pushed again the same day, costs
    the platform none of its older backups: the job keeps the newest backup of each of the newest
    FOUNDRY_BACKUP_KEEP days. Rotation by count let every replay (or redelivery) write another
    backup and delete the oldest kept one: KEEP replays within minutes left only today's."""
    for day in ("20261101T010000.000Z", "20261102T010000.000Z"):  # the previous nights' backups
        (tmp_path / f"foundry-database-{day}.tar").write_bytes(b"an older nightly backup")
    nobody = f"replay-nobody-{uuid.uuid4().hex[:8]}"
    app.send_task("lifecycle.backup", queue=nobody)  # as beat sends it
    message = _captured(nobody)

    q = f"replay-backup-{uuid.uuid4().hex[:8]}"
    env = {"FOUNDRY_BACKUP_DIR": str(tmp_path), "FOUNDRY_BACKUP_DATABASE_URL": backup_role_url}
    with worker(q, FOUNDRY_BACKUP_KEEP="3", **env):
        for _ in range(2):  # the genuine delivery, then one copy of it pushed by a Redis writer
            before = _backups_created()
            envelope = json.loads(message)
            envelope["properties"]["delivery_info"]["routing_key"] = q
            envelope["properties"]["delivery_tag"] = str(uuid.uuid4())
            broker().lpush(q, json.dumps(envelope))
            deadline = time.monotonic() + 120
            while _backups_created() == before:
                assert time.monotonic() < deadline, "the backup task did not finish"
                time.sleep(0.2)
    kept = [path.name for path in backup_list(tmp_path, "database")]
    assert "foundry-database-20261101T010000.000Z.tar" in kept, (
        f"one replayed copy of the daily backup message rotated away an older backup: {kept}"
    )


def test_a_run_message_replayed_with_a_forged_time_limit_header_does_not_fail_the_run(tenant, queue, ledger):  # noqa: F811
    """Only a message's body is signed; its `timelimit` header is not, and Celery obeys it over the
    task's own (a retry re-sends it, signed anew). The worker now ignores limits in the header
    that are not its task's own: a run's genuine `runs.execute` message put back with a 1-second
    hard limit completes. Each attempt used to be killed mid-step until the run had used its
    FOUNDRY_RUN_MAX_RECOVERIES and failed for good (`worker_lost`)."""
    agent = deploy(tenant, FINANCE, agent_yaml(tools=http_tool(ledger.port)))
    ledger.delay = 1.5  # a step outlasts the forged limit
    script = [{"tool_call": {"tool": "ledger", "arguments": {"id": str(n)}}} for n in range(2)]
    script.append({"respond": "Booked."})
    run = start(tenant, agent, "Book two entries.", script)  # no worker yet: its message waits
    envelope = json.loads(_captured(queue))
    envelope["headers"]["timelimit"] = [1, None]  # unsigned: any Redis writer sets it
    envelope["properties"]["delivery_tag"] = str(uuid.uuid4())
    broker().lpush(queue, json.dumps(envelope))
    with worker(queue):
        done = wait_for(tenant, run, "succeeded", "failed", "cancelled", timeout=150)
    assert (done.status, done.reason) == ("succeeded", ""), (
        f"the run ended {done.status} ({done.reason}) after {done.recoveries} recoveries, "
        "killed by a time limit taken from an unsigned header"
    )
