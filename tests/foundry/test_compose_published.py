"""The development compose stack (docker-compose.yml) as it starts with its defaults."""

import os
import re
import subprocess
import sys

import yaml

from tests.conftest import ROOT


def compose_default(value: str) -> str:
    """What `${VAR:-default}` gives when VAR is not set in the shell."""
    return re.sub(r"\$\{[A-Z_0-9]+:-([^}]*)\}", r"\1", value)


def test_the_stack_on_the_public_development_key_is_published_on_the_loopback_only():
    """With its defaults the compose stack runs on the development key written in foundry/settings.py
    (every other key derived from it: anyone could mint a service token), so its one port is
    published on the loopback only, like bin/dev's."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    app_env = {k: compose_default(str(v)) for k, v in compose["x-app"]["environment"].items()}
    assert app_env["FOUNDRY_DEBUG"] == "1" and app_env["FOUNDRY_SECRET_KEY"] == ""

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "foundry.settings", **app_env}
    env = {k: v for k, v in env.items() if k not in {"FOUNDRY_SERVICE_SIGNING_KEYS", "FOUNDRY_ENCRYPTION_KEYS"}}
    env.pop("FOUNDRY_METRICS_DIR", None)
    key = subprocess.run(
        [sys.executable, "-c", "import foundry.settings as s; print(s.SECRET_KEY)"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.strip()
    assert f'"{key}"' in (ROOT / "foundry" / "settings.py").read_text()  # the key is public

    published = [str(p) for p in compose["services"]["proxy"]["ports"]]
    exposed = [p for p in published if not p.startswith(("127.0.0.1:", "[::1]:", "localhost:"))]
    assert not exposed, f"proxy published on every interface: {exposed}, running on the public key {key!r}"
