import shutil
import socket
import subprocess
import time

import pytest
from django.test import Client

from tests.conftest import free_port


def test_healthz_answers_on_any_host_without_touching_the_database(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = Client(HTTP_HOST="10.0.0.7").get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_dependency(db):
    response = Client().get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "postgres": "up",
        "redis": "up",
    }


@pytest.fixture
def own_redis():
    """A Redis server of this test's own, so it can be stopped for real."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is installed by bin/dev"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield proc, f"redis://127.0.0.1:{port}/0"
    proc.kill()
    proc.wait()


def test_readyz_reports_a_stopped_redis(db, settings, own_redis):
    proc, url = own_redis
    settings.REDIS_URL = url
    assert Client().get("/readyz").status_code == 200
    proc.terminate()
    proc.wait(timeout=10)
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["status"] == "down"
    assert body["checks"]["postgres"]["status"] == "up"


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_readyz_reports_an_unreachable_postgres(db, settings):
    settings.DATABASES = {
        **settings.DATABASES,
        "default": {**settings.DATABASES["default"], "PORT": free_port()},
    }
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["postgres"]["status"] == "down"
    assert response.json()["checks"]["redis"]["status"] == "up"
