"""Celery messages are signed: a real worker runs what the platform sends, and refuses — and
logs — a message written into Redis by someone without the key: unsigned, signed with another
key, claiming our certificate, or signed and then altered."""

import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import yaml
from celery.security.certificate import Certificate, FSCertStore
from celery.security.key import PrivateKey
from celery.security.serialization import SecureSerializer
from celery.utils.serialization import b64decode, b64encode
from django.conf import settings
from django.core.management import call_command
from kombu.serialization import dumps
from kombu.utils.encoding import ensure_bytes

from apps.tenants.checks import celery_signing_configured
from foundry.celery import app
from foundry.celery_signing import SigningFiles, signing_keys_create
from tests.conftest import ROOT, server_env

SEPARATOR = b"\x00\x01"  # between the fields of an `auth` body (celery.security.serialization)


@dataclass
class Worker:
    queue: str
    log: Path

    def log_wait(self, *needles: str, timeout: float = 15) -> str:
        """The worker's log once it holds every one of `needles`."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log.read_text()
            if all(needle in text for needle in needles):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker did not log {needles!r}; its log:\n{text}")
            time.sleep(0.05)


@contextmanager
def worker_logging_to(queue: str, log: Path, **env: str):
    """A real Celery worker consuming `queue` that also imports the probe tasks; output in `log`."""
    hostname = f"signing-{uuid.uuid4().hex[:8]}@localhost"
    command = [sys.executable, "-m", "celery", "-A", "foundry", "worker", "--pool", "prefork", "--concurrency", "1"]
    command += ["-Q", queue, "--hostname", hostname, "--loglevel", "WARNING", "--without-gossip", "--without-mingle"]
    command += ["--include", "tests.foundry.celery_probe"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            env=server_env(PYTHONUNBUFFERED="1", **env),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while not app.control.ping(destination=[hostname], timeout=0.5):
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise RuntimeError(f"the Celery worker did not start:\n{log.read_text()}")
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def worker(django_db_setup, tmp_path_factory) -> Worker:
    queue = f"signing-test-{uuid.uuid4().hex[:8]}"
    log = tmp_path_factory.mktemp("signing-worker") / "worker.log"
    with worker_logging_to(queue, log):
        yield Worker(queue=queue, log=log)


@pytest.fixture(scope="module")
def other(tmp_path_factory) -> SigningFiles:
    """A key and certificate of someone else's (the test's keys sign everything else)."""
    return signing_keys_create(tmp_path_factory.mktemp("other"))


@pytest.fixture
def marker(tmp_path) -> Path:
    """Where the probe task writes when it runs (the worker runs as this user, on this machine)."""
    return tmp_path / f"ran-{uuid.uuid4().hex[:8]}"


def broker() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def task_payload(marker: Path) -> list:
    """The body of a protocol 2 task message for the probe: args, kwargs, embed (its kwargs name
    the task it is for, so a signature over the body covers the task's name: foundry/celery.py)."""
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    return [[str(marker)], {"_foundry_task": "tests.probe"}, embed]


def inject(queue: str, marker: Path, *, content_type: str, body: bytes | str, changed: dict | None = None) -> str:
    """LPUSH a well-formed task message for the probe onto `queue`, as anyone able to write to
    Redis could, its headers `changed` (None: taken out); its task id."""
    task_id = str(uuid.uuid4())
    headers = app.amqp.as_task_v2(task_id, "tests.probe", args=[str(marker)]).headers
    for name, value in (changed or {}).items():
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    envelope = {
        "body": base64.b64encode(ensure_bytes(body)).decode(),
        "content-encoding": "utf-8",
        "content-type": content_type,
        "headers": headers,
        "properties": {
            "correlation_id": task_id,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    broker().lpush(queue, json.dumps(envelope))
    return task_id


def probe_ran_wait(marker: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert time.monotonic() < deadline, "the signed task did not run"
        time.sleep(0.05)


# --- What an attacker without our key can put in the queue ------------------------------------
def unsigned(marker: Path, other: SigningFiles) -> tuple[str, bytes | str]:
    return "application/json", json.dumps(task_payload(marker)).encode()


def signed_with_another_key(marker: Path, other: SigningFiles) -> tuple[str, bytes | str]:
    serializer = SecureSerializer(
        PrivateKey(other.key.read_text()), Certificate(other.cert.read_text()), digest="sha256"
    )
    return "application/data", serializer.serialize(task_payload(marker))


def claiming_our_certificate(marker: Path, other: SigningFiles) -> tuple[str, bytes | str]:
    """Signed with another key, but naming our certificate (which is public) as the signer."""
    ours = Certificate(Path(settings.FOUNDRY_CELERY_SIGNING_CERT).read_text())
    serializer = SecureSerializer(PrivateKey(other.key.read_text()), ours, digest="sha256")
    return "application/data", serializer.serialize(task_payload(marker))


def signed_then_altered(marker: Path, other: SigningFiles) -> tuple[str, bytes | str]:
    """A message we signed for a harmless path, its body then pointed at the marker."""
    harmless = marker.with_name("harmless")
    content_type, _, body = dumps(task_payload(harmless), serializer="auth")
    fields = b64decode(body).split(SEPARATOR, 4)
    fields[4] = fields[4].replace(str(harmless).encode(), str(marker).encode())
    assert fields[4] == json.dumps(task_payload(marker)).encode()
    return content_type, b64encode(SEPARATOR.join(fields))


def raw_text(marker: Path, other: SigningFiles) -> tuple[str, bytes | str]:
    """A type kombu lets past any accept list; unhandled, its text would stop the worker."""
    return "application/text", json.dumps(task_payload(marker)).encode()


FORGERIES: dict[str, tuple[Callable, str]] = {
    # What the worker says when it refuses each (it logs the message, headers or body, too).
    "unsigned": (unsigned, "Refusing to deserialize untrusted content of type json (application/json)"),
    "another key": (signed_with_another_key, "Unknown certificate"),
    "claiming our certificate": (claiming_our_certificate, "Can't decode message body: DecodeError(SecurityError("),
    "altered after signing": (signed_then_altered, "Can't decode message body: DecodeError(SecurityError("),
    "raw text": (raw_text, "application/text messages are refused"),
}


def test_it_signs_what_the_platform_sends(marker):
    queue = f"signing-nobody-{uuid.uuid4().hex[:8]}"  # no worker: the message stays in Redis
    app.send_task("tests.probe", args=[str(marker)], queue=queue)
    try:
        (raw,) = broker().lrange(queue, 0, -1)
    finally:
        broker().delete(queue)
    message = json.loads(raw)
    assert message["content-type"] == "application/data"
    fields = b64decode(base64.b64decode(message["body"])).split(SEPARATOR, 4)
    ours = Certificate(Path(settings.FOUNDRY_CELERY_SIGNING_CERT).read_text())
    assert b64decode(fields[0]).decode() == ours.get_id()
    assert json.loads(fields[4]) == task_payload(marker)


def test_it_runs_a_signed_task(worker, marker):
    app.send_task("tests.probe", args=[str(marker)], queue=worker.queue)
    probe_ran_wait(marker)
    assert marker.read_text() == "ran"


@pytest.mark.parametrize("forgery", FORGERIES)
def test_it_refuses_and_logs_a_forged_message(worker, marker, other, forgery):
    forge, refusal = FORGERIES[forgery]
    content_type, body = forge(marker, other)
    inject(worker.queue, marker, content_type=content_type, body=body)

    # The refusal names the message: its body, or its headers (which repeat the arguments).
    worker.log_wait(refusal, str(marker))
    # A signed task sent after it has run: the worker is past the forged one, which did nothing
    # and is gone from the queue (acknowledged or rejected, never redelivered).
    after = marker.with_name(f"{marker.name}-after")
    app.send_task("tests.probe", args=[str(after)], queue=worker.queue)
    probe_ran_wait(after)
    assert not marker.exists()
    assert broker().llen(worker.queue) == 0


# Messages Celery's consumer failed to read outside its error handling (headers are not signed, and
# kombu hands an empty body over undecoded): the worker stopped, or looped, and the message went
# back to the queue for the next worker. (content type, body or None: our signed one, headers changed)
BROKEN: dict[str, tuple[str, bytes | None, dict, str]] = {
    "empty body, the signature's type": ("application/data", b"", {}, "an empty body"),
    "empty body, no type": ("", b"", {}, "an empty body"),
    "empty body, raw text": ("application/text", b"", {}, "an empty body"),
    "signed, its id taken out": ("application/data", None, {"id": None}, "no task id"),
    "signed, its time limit made text": (
        "application/data",
        None,
        {"timelimit": "xy"},
        "a time limit that is no pair of numbers",
    ),
}


def test_it_refuses_and_logs_messages_it_cannot_read_and_keeps_working(worker, marker):
    for name, (content_type, body, changed, _) in BROKEN.items():
        forged = marker.with_name(f"{marker.name}-{len(name)}")
        signed = dumps(task_payload(forged), serializer="auth")[2]
        inject(worker.queue, forged, content_type=content_type, body=signed if body is None else body, changed=changed)
    worker.log_wait(*(f"refused message: {refusal}" for *_, refusal in BROKEN.values()))
    after = marker.with_name(f"{marker.name}-after")
    app.send_task("tests.probe", args=[str(after)], queue=worker.queue)
    probe_ran_wait(after)
    assert not list(marker.parent.glob(f"{marker.name}-[0-9]*"))  # none of them ran
    assert broker().llen(worker.queue) == 0


# --- Configuration ------------------------------------------------------------------------------
def test_the_compose_stack_gives_web_worker_and_beat_the_key_migrate_creates():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    script = services["migrate"]["command"][-1]
    (volume,) = services["migrate"]["volumes"]
    name, directory = volume.split(":")
    assert script.startswith(f"python manage.py celery_signing_keys --dir {directory} && ")
    for service in ("migrate", "web", "worker", "beat"):
        environment = services[service]["environment"]
        assert environment["FOUNDRY_CELERY_SIGNING_KEY"] == f"{directory}/celery-signing.key"
        assert environment["FOUNDRY_CELERY_SIGNING_CERT"] == f"{directory}/celery-signing.crt"
        if service != "migrate":  # read-only; the others: metrics (foundry/metrics.py), exports, the worker's backups
            assert services[service]["volumes"] == [
                f"{name}:{directory}:ro",
                "metrics:/var/lib/foundry/metrics",
                "media:/var/lib/foundry/media",
                *(["backups:/var/lib/foundry/backups"] if service == "worker" else []),
            ]


def production_without_key_env() -> dict[str, str]:
    env = server_env(DJANGO_SETTINGS_MODULE="foundry.settings", FOUNDRY_SECRET_KEY="test-only")
    for name in ("FOUNDRY_CELERY_SIGNING_KEY", "FOUNDRY_CELERY_SIGNING_CERT", "FOUNDRY_DEBUG"):
        env.pop(name, None)
    return env


def test_a_worker_without_the_key_refuses_to_start_in_production():
    command = [sys.executable, "-m", "celery", "-A", "foundry", "worker", "-Q", f"signing-never-{uuid.uuid4().hex[:8]}"]
    done = subprocess.run(command, env=production_without_key_env(), cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1
    assert "ImproperlyConfigured: Celery message signing is not configured" in done.stderr


def test_web_without_the_key_queues_nothing_in_production():
    queue = f"signing-never-{uuid.uuid4().hex[:8]}"
    script = f"""
import django
django.setup()
from foundry.celery import app
for attempt in range(2):
    try:
        app.send_task("tests.probe", args=["/nowhere"], queue="{queue}")
    except Exception as exc:
        print(type(exc).__name__, exc)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], env=production_without_key_env(), cwd=ROOT, capture_output=True, text=True
    )
    assert done.stdout.splitlines() == 2 * [
        "ImproperlyConfigured Celery message signing is not configured: set FOUNDRY_CELERY_SIGNING_KEY and "
        "FOUNDRY_CELERY_SIGNING_CERT (manage.py celery_signing_keys creates them)."
    ]
    assert broker().llen(queue) == 0


def test_it_creates_the_key_and_certificate_once(tmp_path, capsys):
    call_command("celery_signing_keys", "--dir", str(tmp_path / "keys"))
    key, cert = tmp_path / "keys/celery-signing.key", tmp_path / "keys/celery-signing.crt"
    assert capsys.readouterr().out == f"FOUNDRY_CELERY_SIGNING_KEY={key}\nFOUNDRY_CELERY_SIGNING_CERT={cert}\n"
    assert key.stat().st_mode & 0o777 == 0o600
    before = key.read_bytes(), cert.read_bytes()

    call_command("celery_signing_keys", "--dir", str(tmp_path / "keys"))
    assert (key.read_bytes(), cert.read_bytes()) == before


def test_the_check_refuses_production_without_signing(settings):
    settings.DEBUG = False
    settings.FOUNDRY_CELERY_SIGNING = False
    assert [problem.id for problem in celery_signing_configured(None)] == ["foundry.E020"]
    settings.DEBUG = True
    assert [problem.id for problem in celery_signing_configured(None)] == ["foundry.W020"]


def test_the_check_passes_the_test_keys(settings):
    assert settings.FOUNDRY_CELERY_SIGNING
    assert celery_signing_configured(None) == []


def test_the_check_refuses_a_certificate_the_workers_do_not_trust(settings, other):
    settings.FOUNDRY_CELERY_CERT_STORE = str(other.cert)
    (problem,) = celery_signing_configured(None)
    assert problem.id == "foundry.E021"
    assert "is not in the certificate store" in problem.msg


def test_the_check_refuses_a_key_that_is_not_the_certificates(settings, other):
    settings.FOUNDRY_CELERY_SIGNING_KEY = str(other.key)
    (problem,) = celery_signing_configured(None)
    assert problem.id == "foundry.E021"
    assert "is not the private key of" in problem.msg


def test_the_check_warns_a_month_before_the_certificate_expires(settings, tmp_path):
    expiring = signing_keys_create(tmp_path / "expiring", days=20)
    settings.FOUNDRY_CELERY_SIGNING_KEY, settings.FOUNDRY_CELERY_SIGNING_CERT = str(expiring.key), str(expiring.cert)
    settings.FOUNDRY_CELERY_CERT_STORE = str(expiring.cert)
    assert [problem.id for problem in celery_signing_configured(None)] == ["foundry.W021"]


def test_the_store_may_trust_an_old_and_a_new_certificate(settings, tmp_path):
    """A rotation: the new pair signs while the old certificate still verifies queued messages."""
    old, new = signing_keys_create(tmp_path / "old"), signing_keys_create(tmp_path / "new")
    settings.FOUNDRY_CELERY_SIGNING_KEY, settings.FOUNDRY_CELERY_SIGNING_CERT = str(new.key), str(new.cert)
    settings.FOUNDRY_CELERY_CERT_STORE = str(tmp_path / "*" / "celery-signing.crt")
    assert celery_signing_configured(None) == []
    store = FSCertStore(settings.FOUNDRY_CELERY_CERT_STORE)
    for pair in (old, new):
        signer = SecureSerializer(PrivateKey(pair.key.read_text()), Certificate(pair.cert.read_text()), store)
        assert signer.deserialize(signer.serialize(["queued"])) == ["queued"]
    settings.FOUNDRY_CELERY_CERT_STORE = str(old.cert)
    assert [problem.id for problem in celery_signing_configured(None)] == ["foundry.E021"]
