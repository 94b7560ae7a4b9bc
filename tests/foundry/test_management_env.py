"""README "REST API" / "Forge CLI" / "Management commands": after `bin/dev up`, a newcomer runs
`.venv/bin/python manage.py create_api_token acme ...` in another shell that loaded `.data/env`:
without DATABASE_URL, settings default to bin/dev's database with the generated password."""

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

DATA_ENV = ROOT / ".data" / "env"


def _data_env() -> dict[str, str]:
    values = {}
    for line in DATA_ENV.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key and not key.startswith("#"):
            values[key] = value
    return values


def test_management_commands_reach_the_database_with_the_environment_bin_dev_writes():
    """README (Management commands): "Management commands need the environment `bin/dev` sets;
    `bin/dev` writes generated secrets to `.data/env`, and `DATABASE_URL` defaults to the `foundry`
    role on `127.0.0.1:5432`" — the configuration table gives that default as
    `postgres://foundry:…@127.0.0.1:5432/foundry`, with `FOUNDRY_DB_PASSWORD` (in `.data/env`) as
    "the `foundry` role's password in `bin/dev`'s default `DATABASE_URL`".

    So with `.data/env`'s variables in the environment, and nothing else, a documented read-only
    command reaches bin/dev's database. (settings' own default had the password "foundry", not
    FOUNDRY_DB_PASSWORD: the README's token steps failed in any shell but bin/dev's.)"""
    # bin/dev (the README's test command included) writes .data/env before anything runs.
    assert DATA_ENV.exists(), f"{DATA_ENV} is missing: run the suite through bin/dev test"
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env = {**keep, **_data_env()}
    done = subprocess.run(
        [sys.executable, "manage.py", "list_tenants", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    err = done.stderr.decode()[-800:]
    assert done.returncode == 0, err
    for line in done.stdout.decode().splitlines():  # one JSON object per tenant
        assert "slug" in json.loads(line)


def test_the_default_database_url_takes_the_generated_password_and_port():
    """Hermetic: no database reached, only what settings make of FOUNDRY_DB_PASSWORD (any
    characters: quoted into the URL) and FOUNDRY_PG_PORT when DATABASE_URL is unset."""
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env = {**keep, "FOUNDRY_SECRET_KEY": "x" * 50, "FOUNDRY_DB_PASSWORD": "p@ss/w:rd%", "FOUNDRY_PG_PORT": "5544"}
    code = (
        "import django, json; django.setup(); from django.conf import settings; db = settings.DATABASES['default'];"
        " print(json.dumps([db['USER'], db['PASSWORD'], db['HOST'], db['PORT'], db['NAME']]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "foundry.settings"},
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()[-800:]
    assert json.loads(done.stdout) == ["foundry", "p@ss/w:rd%", "127.0.0.1", 5544, "foundry"]
