"""Someone able to write to the broker's Redis, without the signing key, must not be able to stop
the workers: docs/operations/deployment.md ("Celery message signing") says a worker refuses a
message that is not signed, "logs it ... and drops it. A message someone writes into Redis without
the key never runs", and foundry/celery.py (`message_refusal`, `GuardedConsumer`) exists so that a
malformed message is "refused (logged, dropped) ... instead of stopping" the worker.

Kombu's Redis transport parses the envelope (JSON, then the `body` by `body_encoding`) before any
of that runs, outside Celery's error handling: an envelope it could not read raised out of the
event loop and the worker exited (one write on the broadcast channel took every worker at once).
foundry/broker.py's transport drops such an item, and the worker goes on."""

import json
import uuid

import pytest

from foundry.celery import app
from tests.foundry.test_celery_signing import Worker, broker, probe_ran_wait, worker_logging_to


@pytest.fixture
def worker(django_db_setup, tmp_path_factory) -> Worker:
    """A real worker of its own for each test (the one a forgery stops is not shared)."""
    queue = f"review-broker-{uuid.uuid4().hex[:8]}"
    log = tmp_path_factory.mktemp("review-broker-worker") / "worker.log"
    with worker_logging_to(queue, log):
        yield Worker(queue=queue, log=log)


def _still_working(worker, tmp_path) -> None:
    """A signed probe sent after the forgery still runs (the worker did not stop)."""
    after = tmp_path / f"after-{uuid.uuid4().hex[:8]}"
    app.send_task("tests.probe", args=[str(after)], queue=worker.queue)
    probe_ran_wait(after, timeout=15)
    assert "Unrecoverable error" not in worker.log.read_text()


def _bad_base64_envelope(routing_key: str) -> bytes:
    """A well-shaped kombu envelope whose body is not the base64 it claims to be."""
    return json.dumps(
        {
            "body": "!!!not-base64",
            "content-encoding": "utf-8",
            "content-type": "application/data",
            "headers": {"task": "tests.probe", "id": str(uuid.uuid4())},
            "properties": {
                "delivery_info": {"exchange": "", "routing_key": routing_key},
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    ).encode()


@pytest.mark.parametrize("kind", ["not JSON", "JSON, not an object", "body not base64"])
def test_an_unreadable_item_in_the_task_queue_does_not_stop_the_worker(worker, tmp_path, kind):
    """LPUSH onto the worker's queue of an item kombu cannot read: expected refused and dropped
    (logged), the worker going on with the next message; today the worker exits
    (kombu/transport/redis.py `_brpop_read` -> virtual `_deliver`/`Message.__init__`)."""
    raw = {
        "not JSON": b"garbage{",
        "JSON, not an object": b"[1, 2]",
        "body not base64": _bad_base64_envelope(worker.queue),
    }[kind]
    broker().lpush(worker.queue, raw)
    _still_working(worker, tmp_path)


@pytest.mark.parametrize("kind", ["JSON, not an object", "body not base64"])
def test_an_unreadable_broadcast_on_the_control_channel_does_not_stop_the_workers(worker, tmp_path, kind):
    """PUBLISH on the control (pidbox) fanout channel every worker subscribes to, of an envelope
    kombu cannot read: expected ignored (logged) like an unsigned control command; today every
    worker subscribed exits at once (kombu/transport/redis.py `_receive_one` ->
    `_deliver_fanout_message` -> virtual `Message.__init__`)."""
    db = broker().connection_pool.connection_kwargs.get("db", 0)
    raw = {"JSON, not an object": b"[1, 2]", "body not base64": _bad_base64_envelope("")}[kind]
    assert broker().publish(f"/{db}.celery.pidbox", raw) >= 1  # the worker is listening
    _still_working(worker, tmp_path)


def test_a_compressed_message_is_dropped_before_kombu_decompresses_it(monkeypatch, caplog):
    """kombu decompresses a message whose (unsigned) `compression` header is set while building it,
    before the signature is checked and without a bound: a small bomb written into Redis could take
    a worker's memory. The transport drops any compressed message (the platform sends none); an
    uncompressed one is delivered as before."""
    import gzip
    from base64 import b64encode

    from kombu.transport.virtual import base

    from foundry.broker import GuardedSentinelTransport, GuardedTransport

    delivered = []
    monkeypatch.setattr(base.Transport, "_deliver", lambda self, message, queue: delivered.append(queue))
    bomb = b64encode(gzip.compress(b"\0" * 1_000_000)).decode()
    compressed = {"body": bomb, "headers": {"compression": "application/x-gzip"}, "properties": {}}
    plain = {"body": "e30=", "headers": {}, "properties": {}}
    for transport in (GuardedTransport, GuardedSentinelTransport):
        with caplog.at_level("WARNING", logger="foundry.celery"):
            transport._deliver(object.__new__(transport), compressed, "celery")
        transport._deliver(object.__new__(transport), plain, "celery")
    assert delivered == ["celery", "celery"]  # the plain ones only
    assert caplog.text.count("dropped a compressed message") == 2
