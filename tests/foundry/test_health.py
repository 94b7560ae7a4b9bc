import pytest
from django.test import Client

from tests.conftest import free_port, redis_server


def test_healthz_answers_on_any_host_without_touching_the_database(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = Client(HTTP_HOST="10.0.0.7").get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.fixture(autouse=True)
def no_worker_needed(settings):
    """Whether a worker runs depends on earlier tests; tests/foundry/test_worker_health.py checks workers."""
    settings.FOUNDRY_READY_REQUIRES_WORKER = False


def test_readyz_reports_each_dependency(db):
    response = Client().get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert {name: check["status"] for name, check in body["checks"].items() if name != "workers"} == {
        "postgres": "up",
        "redis": "up",
        "broker": "up",
    }


@pytest.fixture
def own_redis():
    """A Redis server of this test's own, so it can be stopped for real."""
    with redis_server() as (proc, port):
        yield proc, f"redis://127.0.0.1:{port}/0"


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
