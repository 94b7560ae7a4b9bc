"""The compose stack and the Procfile name commands and settings that really exist."""

import shlex
from pathlib import Path

import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]


def test_compose_runs_the_whole_stack_with_an_unprivileged_database_role():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker", "beat"}
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert "foundry:foundry@postgres" in services["web"]["environment"]["DATABASE_URL"]
    init = (ROOT / "deploy/postgres-init/10-foundry-role.sql").read_text()
    assert "NOSUPERUSER NOBYPASSRLS" in init


def test_every_management_command_the_stack_runs_exists():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    script = compose["services"]["migrate"]["command"][-1]
    used = [part.split()[2] for part in script.split("&&")]
    assert used == ["celery_signing_keys", "migrate_platform", "demo_data"]
    assert set(used) <= set(get_commands())


def test_the_procfile_serves_web_worker_and_beat():
    lines = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    assert set(lines) == {"web", "worker", "beat"}
    assert shlex.split(lines["web"])[1:] == ["foundry.wsgi", "--config", "foundry/gunicorn.conf.py"]
