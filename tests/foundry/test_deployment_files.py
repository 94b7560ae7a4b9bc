"""The compose stack and the Procfile name commands and settings that really exist."""

import re
import shlex
from pathlib import Path

import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]


def test_compose_runs_the_whole_stack_with_an_unprivileged_database_role():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "mcp", "proxy", "worker", "beat"}
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


def test_the_proxy_sends_mcp_to_the_asgi_service_and_the_rest_to_gunicorn():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert [name for name, service in services.items() if service.get("ports")] == ["proxy"]
    assert services["proxy"]["image"] == "caddy:2"
    assert services["proxy"]["configs"] == [{"source": "caddyfile", "target": "/etc/caddy/Caddyfile"}]
    caddyfile = compose["configs"]["caddyfile"]["content"]
    assert re.search(r"^:8000 \{$", caddyfile, re.MULTILINE)
    assert re.search(r"@mcp path (.+)", caddyfile).group(1).split() == ["/mcp", "/mcp/"]
    routes = re.findall(r"handle( @\w+)? \{\s*reverse_proxy (\S+)\s*\}", caddyfile)
    assert routes == [(" @mcp", "mcp:8000"), ("", "web:8000")]
    assert services["web"]["command"][:2] == ["gunicorn", "foundry.wsgi"]
    assert services["web"]["environment"]["FOUNDRY_BIND"] == "0.0.0.0:8000"
    mcp = services["mcp"]["command"]
    assert mcp[:2] == ["uvicorn", "foundry.asgi:application"]
    assert mcp[mcp.index("--port") + 1] == "8000"
    assert mcp[mcp.index("--lifespan") + 1] == "on"  # the MCP SDK's session manager runs in it


def test_the_procfile_serves_web_worker_and_beat():
    lines = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    assert set(lines) == {"web", "worker", "beat"}
    # Development: one ASGI application for the console, the API and /mcp, on bin/dev's port.
    web = shlex.split(lines["web"])
    assert web[:2] == [".venv/bin/uvicorn", "foundry.asgi:application"]
    assert web[web.index("--port") + 1] == "${PORT:-8000}"
    assert web[web.index("--lifespan") + 1] == "on"


def test_the_compose_stack_shares_one_metrics_directory_between_web_and_workers():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for service in ("web", "mcp", "worker"):
        assert services[service]["environment"]["FOUNDRY_METRICS_DIR"] == "/var/lib/foundry/metrics"
        assert "metrics:/var/lib/foundry/metrics" in services[service]["volumes"]
