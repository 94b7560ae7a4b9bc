"""The compose stack and the Procfile name commands and settings that really exist."""

import json
import re
import shlex
from pathlib import Path

import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]


def test_compose_runs_the_whole_stack_with_an_unprivileged_database_role():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "mcp", "proxy", "worker", "beat", "lgtm"}
    # 15: the server version Debian's client in the image (pg_dump for backups) can dump.
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    assert "foundry:foundry@postgres" in services["web"]["environment"]["DATABASE_URL"]
    init = (ROOT / "deploy/postgres-init/10-foundry-role.sql").read_text()
    assert "CREATE ROLE foundry LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB" in init
    # The shared tables' owner is another role, a member of the app's (not the reverse); only the
    # one-shot migrate job is given its password (foundry/db/roles.py).
    assert "CREATE ROLE foundry_owner LOGIN NOSUPERUSER NOBYPASSRLS" in init
    assert "GRANT foundry TO foundry_owner;" in init and "CREATE DATABASE foundry OWNER foundry_owner;" in init
    holders = {
        name for name, service in services.items() if "FOUNDRY_DB_OWNER_PASSWORD" in service.get("environment", {})
    }
    assert holders == {"migrate"}
    assert services["migrate"]["environment"]["FOUNDRY_DB_OWNER_USER"] == "foundry_owner"
    # Whole-database backups read as a role of their own, past Row-Level Security, read-only.
    assert "foundry_backup LOGIN NOSUPERUSER BYPASSRLS" in init and "GRANT pg_read_all_data TO foundry_backup" in init
    backup_holders = {
        name for name, service in services.items() if "FOUNDRY_BACKUP_DATABASE_URL" in service.get("environment", {})
    }
    assert backup_holders == {"worker"}  # the backup job runs there; web and mcp face the internet
    assert "foundry_backup:foundry_backup@postgres" in services["worker"]["environment"]["FOUNDRY_BACKUP_DATABASE_URL"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "postgresql-client" in dockerfile


def test_every_management_command_the_stack_runs_exists():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    script = compose["services"]["migrate"]["command"][-1]
    used = [part.split()[2] for part in script.split("&&")]
    assert used == ["celery_signing_keys", "migrate_platform", "demo_data"]
    assert set(used) <= set(get_commands())


def test_the_proxy_sends_mcp_to_the_asgi_service_and_the_rest_to_gunicorn():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {name: service["ports"] for name, service in services.items() if service.get("ports")} == {
        "proxy": ["127.0.0.1:8000:8000"],  # on the development key by default: loopback only
        "lgtm": ["127.0.0.1:3000:3000"],  # Grafana, on loopback only
    }
    assert services["proxy"]["image"] == "caddy:2"
    assert services["proxy"]["configs"] == [{"source": "caddyfile", "target": "/etc/caddy/Caddyfile"}]
    caddyfile = compose["configs"]["caddyfile"]["content"]
    assert re.search(r"^:8000 \{$", caddyfile, re.MULTILINE)
    assert re.search(r"@mcp path (.+)", caddyfile).group(1).split() == ["/mcp", "/mcp/"]
    # The published port never serves /metrics (its compose default token is no secret).
    published = caddyfile[caddyfile.index(":8000 {") : caddyfile.index(":9464 {")]
    assert re.search(r"handle /metrics \{\s*respond 404\s*\}", published)
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
    # The backup role's URL is the worker's only (the daily backup), as in the compose stack.
    without_backup = ["env", "-u", "FOUNDRY_BACKUP_DATABASE_URL"]
    assert web[:3] == without_backup and shlex.split(lines["beat"])[:3] == without_backup
    assert shlex.split(lines["worker"])[0] == ".venv/bin/celery"
    web = web[3:]
    assert web[:2] == [".venv/bin/uvicorn", "foundry.asgi:application"]
    assert web[web.index("--port") + 1] == "${PORT:-8000}"
    assert web[web.index("--lifespan") + 1] == "on"
    # No proxy in front: uvicorn would otherwise take X-Forwarded-For from any local client (its
    # default trusts 127.0.0.1) as the client's address, in audit events and rate-limit keys.
    assert "--no-proxy-headers" in web


def test_bin_dev_up_hands_its_processes_no_owner_or_backup_password():
    """`bin/dev up` loads .data/env, owner and backup passwords included, to migrate; the web,
    worker and beat it then starts get neither password (the worker its backup URL only)."""
    script = (ROOT / "bin/dev").read_text()
    up = script[script.index("\n  up)") : script.index("\n  test)")]
    start = up.index('exec "$VENV/bin/honcho"')
    assert "unset FOUNDRY_DB_OWNER_PASSWORD FOUNDRY_BACKUP_DB_PASSWORD" in up[:start]


def test_the_compose_stack_gives_the_backups_to_the_worker_alone():
    """Backups hold every workspace's rows, read past Row-Level Security, and a restore trusts
    checksums whoever writes the files can recompute: the web, mcp and beat containers (web and
    mcp face the internet) mounted them read-write, though only the worker's job writes them."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    holders = {
        name
        for name, service in services.items()
        for volume in service.get("volumes", [])
        if isinstance(volume, str) and volume.split(":")[1:2] == ["/var/lib/foundry/backups"]
    }
    assert holders == {"worker"}
    assert {name for name, s in services.items() if "FOUNDRY_BACKUP_DIR" in s.get("environment", {})} == {"worker"}


def test_the_compose_stack_shares_one_metrics_directory_between_web_and_workers():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for service in ("web", "mcp", "worker"):
        assert services[service]["environment"]["FOUNDRY_METRICS_DIR"] == "/var/lib/foundry/metrics"
        assert "metrics:/var/lib/foundry/metrics" in services[service]["volumes"]


def test_the_compose_stack_sends_every_app_services_traces_to_the_lgtm_stack():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["lgtm"]["image"].startswith("grafana/otel-lgtm:")
    names = {}
    for service in ("web", "mcp", "worker", "beat"):
        environment = services[service]["environment"]
        assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://lgtm:4318"  # the image's OTLP/HTTP
        names[service] = environment["OTEL_SERVICE_NAME"]
    assert names == {"web": "foundry-web", "mcp": "foundry-mcp", "worker": "foundry-worker", "beat": "foundry-beat"}


def _lgtm_mounts() -> dict[str, Path]:
    """Where each file or directory of deploy/ appears in the lgtm container."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    mounts = {}
    for volume in services["lgtm"]["volumes"]:
        source, target, mode = volume.split(":")
        assert mode == "ro" and source.startswith("./deploy/")
        assert (ROOT / source).exists(), source
        mounts[target] = ROOT / source
    return mounts


def test_grafana_provisions_the_foundry_overview_dashboard_from_the_mounted_directory():
    mounts = _lgtm_mounts()
    provisioning_dir = "/otel-lgtm/grafana/conf/provisioning/dashboards/"  # the image's Grafana reads it
    (provider_file,) = [path for target, path in mounts.items() if target.startswith(provisioning_dir)]
    (provider,) = yaml.safe_load(provider_file.read_text())["providers"]
    assert provider["type"] == "file"
    dashboards = mounts[provider["options"]["path"]]
    assert dashboards.is_dir()
    (dashboard_file,) = dashboards.glob("*.json")
    dashboard = json.loads(dashboard_file.read_text())
    assert dashboard["title"] == "Foundry overview"
    expressions = " ".join(
        target.get("expr") or target.get("query", "")
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    )
    for counter in (
        "foundry_model_tokens_total",
        "foundry_model_cost_usd_total",
        "foundry_rate_limit_rejections_total",
    ):
        assert counter in expressions
    # The image's provisioned data sources, by uid.
    used = {panel["datasource"]["uid"] for panel in dashboard["panels"] if panel.get("datasource")}
    assert used == {"prometheus", "tempo"}


def test_prometheus_scrapes_metrics_with_the_apps_token_on_the_platform_host():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    prometheus = yaml.safe_load(_lgtm_mounts()["/otel-lgtm/prometheus.yaml"].read_text())
    (job,) = prometheus["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    (token_config,) = services["lgtm"]["configs"]
    assert job["authorization"]["credentials_file"] == token_config["target"]
    token = compose["configs"][token_config["source"]]["content"]
    assert token == services["web"]["environment"]["FOUNDRY_METRICS_TOKEN"]
    # Through the proxy's internal listener, which names the platform's host (web serves
    # /metrics nowhere else) and is not published.
    ((target,),) = [static["targets"] for static in job["static_configs"]]
    host, port = target.split(":")
    assert host == "proxy" and f"{port}:{port}" not in str(services["proxy"]["ports"])
    caddyfile = compose["configs"]["caddyfile"]["content"]
    listener = caddyfile.split(f"\n:{port} {{", 1)[1]
    assert (
        re.search(r"handle /metrics \{\s*reverse_proxy web:8000 \{\s*header_up Host (\S+)", listener).group(1)
        == (services["web"]["environment"]["FOUNDRY_BASE_DOMAIN"])
    )
