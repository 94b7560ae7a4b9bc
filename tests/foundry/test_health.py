import logging

import pytest
from django.test import Client

from tests.conftest import free_port, redis_server


def test_healthz_answers_on_any_host_without_touching_the_database(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = Client(HTTP_HOST="10.0.0.7").get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_a_probe_answer_carries_the_security_headers(db, settings, path):
    """The probes answer before host routing, but after the middleware that gives every answer
    its security headers: an answer from an address a browser could open is no exception."""
    settings.FOUNDRY_READY_REQUIRES_WORKER = False
    response = Client(HTTP_HOST="10.0.0.7").get(path)
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert "no-store" in response["Cache-Control"]


def test_a_probe_is_not_redirected_to_https(db, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert Client().get("/healthz").status_code == 200


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


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(db, settings, own_redis, caplog):
    """A load balancer probes every few seconds: the log says when readiness changes, not each probe."""
    proc, url = own_redis
    suites = settings.REDIS_URL
    settings.REDIS_URL = url
    Client().get("/readyz")
    proc.terminate()
    proc.wait(timeout=10)
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            assert Client().get("/readyz").status_code == 503
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.name for r in errors] == ["foundry.health"], [r.getMessage() for r in errors]
    assert "unavailable" in errors[0].getMessage() and "redis" in errors[0].getMessage()
    caplog.clear()
    settings.REDIS_URL = url.replace(url.rsplit(":", 1)[1].split("/")[0], str(free_port()))
    with caplog.at_level(logging.INFO):
        Client().get("/readyz")  # still down, the same check: nothing new to say
    assert not [r for r in caplog.records if r.name == "foundry.health"]
    settings.REDIS_URL = suites
    with caplog.at_level(logging.INFO):
        assert Client().get("/readyz").status_code == 200
        assert Client().get("/readyz").status_code == 200
    said = [r.getMessage() for r in caplog.records if r.name == "foundry.health"]
    assert said == ["readiness: every check is up again"]


def test_readyz_connects_to_postgres_with_the_database_url_s_parameters(db, settings, monkeypatch):
    """DATABASE_URL's query parameters (OPTIONS: sslmode, client certificates, target_session_attrs...)
    are the probe's too: it connected without them, so with `?sslmode=verify-full` it said ready
    where the application could not connect (and, against a server requiring a client
    certificate, never ready). A parameter this primary server cannot meet makes it down."""
    from foundry.health import readiness

    assert readiness()[1]["postgres"]["status"] == "up"
    monkeypatch.setitem(settings.DATABASES["default"]["OPTIONS"], "target_session_attrs", "standby")
    ready, checks = readiness()
    assert not ready and checks["postgres"]["status"] == "down", checks
